/* The query page: YASGUI on this server's /sparql, with the example queries in a menu.
 *
 * Everything YASGUI would fetch from other hosts (prefix.cc, LOV) is replaced by
 * lists the server embeds in the page, so the page works offline and leaks nothing.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("ui-data").textContent);
  var endpoint = new URL(data.endpoint, window.location.href).href;
  var examples = {};
  data.examples.forEach(function (e) { examples[e.name] = e; });

  var Yasqe = Yasgui.Yasqe;
  Yasqe.forkAutocompleter("prefixes", { name: "prefixes-local", get: data.prefixes, persistenceId: null }, false);
  Yasqe.forkAutocompleter("property", { name: "property-local", bulk: true, get: data.properties, persistenceId: null }, false);
  Yasqe.forkAutocompleter("class", { name: "class-local", bulk: true, get: data.classes, persistenceId: null }, false);
  Yasqe.defaults.autocompleters = ["variables", "prefixes-local", "property-local", "class-local"];

  var first = data.examples.length ? data.examples[0].query : "SELECT * WHERE { ?s ?p ?o } LIMIT 10";
  var yasgui = new Yasgui(document.getElementById("yasgui"), {
    requestConfig: { endpoint: endpoint, method: "POST" },
    copyEndpointOnNewTab: true,
    endpointCatalogueOptions: { getData: function () { return [{ endpoint: endpoint }]; } },
    persistenceId: "epar-graph-" + endpoint,
    yasqe: { value: first },
  });
  // A tab restored from an earlier visit may point at another endpoint; this page is about this one.
  Object.keys(yasgui._tabs).forEach(function (id) { yasgui.getTab(id).setEndpoint(endpoint); });

  var select = document.getElementById("examples");
  var description = document.getElementById("example-description");

  function openExample(name) {
    var example = examples[name];
    if (!example) return null;
    var tab = yasgui.tabNameTaken(example.title);
    if (tab) {
      yasgui.selectTabId(tab.getId());
    } else {
      tab = yasgui.addTab(true, { name: example.title });
    }
    tab.setEndpoint(endpoint);
    tab.setQuery(example.query);
    return tab;
  }

  select.addEventListener("change", function () {
    var example = examples[select.value];
    description.textContent = example ? example.description : "";
  });
  document.getElementById("example-open").addEventListener("click", function () {
    openExample(select.value);
  });
  document.getElementById("example-run").addEventListener("click", function () {
    var tab = openExample(select.value);
    if (tab) tab.query();
  });

  // Result tables link entity IRIs (https://w3id.org/epar/…); this server serves them under the
  // same path, so point those links here before the browser follows them.
  function localise(event) {
    var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
    if (link && link.href.indexOf(data.base) === 0) {
      link.href = new URL(data.root + "/" + link.href.slice(data.base.length), window.location.href).href;
    }
  }
  ["mouseover", "focusin", "click", "auxclick"].forEach(function (type) {
    document.getElementById("yasgui").addEventListener(type, localise, true);
  });

  var wanted = new URLSearchParams(window.location.search).get("example");
  if (wanted && examples[wanted]) {
    select.value = wanted;
    select.dispatchEvent(new Event("change"));
    openExample(wanted);
  }
  window.eparYasgui = yasgui;
})();
