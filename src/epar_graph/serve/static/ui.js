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

  // Result cells, drawn by YASR's table plugin. Entity IRIs (https://w3id.org/epar/…) link to this
  // server, which serves them under the same path; other IRIs keep their own address. A literal shows
  // as its plain value, with its language or datatype subdued after it. Everything is escaped: a
  // value or an IRI from the data is text, never markup.
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  var known = {};
  data.prefixes.forEach(function (line) {
    var m = /^([^:]*): <(.*)>$/.exec(line);
    if (m) known[m[1]] = m[2];
  });
  function curie(iri, prefixes) {
    var sources = [prefixes || {}, known];
    for (var i = 0; i < sources.length; i++) {
      for (var p in sources[i]) {
        var ns = sources[i][p];
        if (ns && iri.indexOf(ns) === 0 && iri.length > ns.length) return p + ":" + iri.slice(ns.length);
      }
    }
    return null;
  }
  function localHref(iri) {
    if (iri.indexOf(data.base) === 0) return data.root + "/" + iri.slice(data.base.length);
    return iri;
  }
  var Table = Yasgui.Yasr.plugins.table;
  Table.prototype.getUriLinkFromBinding = function (binding, prefixes) {
    var iri = binding.value;
    var short = curie(iri, prefixes);
    var target = this.config.openIriInNewWindow ? " target='_blank' rel='noopener noreferrer'" : "";
    var shown = short ? escapeHtml(short) : "&lt;" + escapeHtml(iri) + "&gt;";
    return "<a class='iri'" + target + " href='" + escapeHtml(localHref(iri)) + "' title='" +
      escapeHtml(iri) + "'>" + shown + "</a>";
  };
  Table.prototype.formatLiteral = function (binding, prefixes) {
    var value = escapeHtml(binding.value);
    if (binding["xml:lang"]) {
      return value + " <span class='literal-meta'>@" + escapeHtml(binding["xml:lang"]) + "</span>";
    }
    var datatype = binding.datatype;
    if (datatype && datatype !== known.xsd + "string") {
      var name = curie(datatype, prefixes) || datatype;
      return value + " <span class='literal-meta' title='" + escapeHtml(datatype) + "'>" + escapeHtml(name) + "</span>";
    }
    return value;
  };

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

  // After Run, bring the answer (or the error) into view: on a small screen it is below the editor.
  yasgui.on("queryResponse", function (_yasgui, tab) {
    window.setTimeout(function () {
      var panel = tab && tab.getYasr ? tab.getYasr().rootEl : document.querySelector(".yasr");
      if (panel) panel.scrollIntoView({ block: "start", behavior: "smooth" });
    }, 0);
  });

  var wanted = new URLSearchParams(window.location.search).get("example");
  if (wanted && examples[wanted]) {
    select.value = wanted;
    select.dispatchEvent(new Event("change"));
    openExample(wanted);
  }
  window.eparYasgui = yasgui;
})();
