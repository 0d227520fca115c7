/* Sortable impact table (progressive enhancement: the page is already
 * sorted by impact without it). Each heading with data-sort becomes a
 * button; numbers sort highest first, text A to Z; the sort is stable. */
(function () {
  "use strict";

  function sortBy(table, key, text) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var indexed = rows.map(function (row, i) { return [row, i]; });
    indexed.sort(function (a, b) {
      var x = a[0].getAttribute("data-" + key) || "";
      var y = b[0].getAttribute("data-" + key) || "";
      var order = text ? (x < y ? -1 : x > y ? 1 : 0) : Number(y) - Number(x);
      return order || a[1] - b[1];
    });
    indexed.forEach(function (pair) { body.appendChild(pair[0]); });
    var heads = table.querySelectorAll("th[data-sort]");
    for (var i = 0; i < heads.length; i++) {
      heads[i].setAttribute("aria-sort", heads[i].getAttribute("data-sort") === key ? (text ? "ascending" : "descending") : "none");
    }
  }

  var tables = document.querySelectorAll("table.sortable");
  for (var t = 0; t < tables.length; t++) {
    (function (table) {
      var heads = table.querySelectorAll("th[data-sort]");
      for (var i = 0; i < heads.length; i++) {
        (function (th) {
          var button = document.createElement("button");
          button.type = "button";
          button.className = "sort";
          while (th.firstChild) {
            button.appendChild(th.firstChild);
          }
          th.appendChild(button);
          button.addEventListener("click", function () {
            sortBy(table, th.getAttribute("data-sort"), th.getAttribute("data-type") === "text");
          });
        })(heads[i]);
      }
    })(tables[t]);
  }
})();
