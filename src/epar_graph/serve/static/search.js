// Autocomplete for the search box on every page: suggestions come from /search as JSON.
(function () {
  "use strict";
  var form = document.querySelector("form.site-search");
  if (!form) { return; }
  var input = form.querySelector("input[name=q]");
  var list = document.getElementById("search-suggestions");
  var root = form.getAttribute("data-root") || "";
  var timer = null;
  var last = "";
  function show(results) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    results.forEach(function (r) {
      var option = document.createElement("option");
      option.value = r.label;
      option.textContent = r.kind + (r.status ? " · " + r.status : "") + (r.number ? " · " + r.number : "");
      list.appendChild(option);
    });
  }
  input.addEventListener("input", function () {
    var q = input.value.trim();
    if (timer) { clearTimeout(timer); }
    if (q.length < 2 || q === last) { return; }
    timer = setTimeout(function () {
      last = q;
      fetch(root + "/search?limit=8&q=" + encodeURIComponent(q), { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { results: [] }; })
        .then(function (doc) { if (input.value.trim() === q) { show(doc.results || []); } })
        .catch(function () { show([]); });
    }, 120);
  });
}());
