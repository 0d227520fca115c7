/* Age filter of the uncategorized pages: show only builds newer than N hours.
 * Ages are measured from the report's own time (body[data-now]), not the
 * browser's clock, so an old report filters the same way it did when made. */
(function () {
  "use strict";

  function apply(hours) {
    var now = Number(document.body.getAttribute("data-now"));
    var limit = hours * 3600 * 1000;
    // One element per build: its rows (a <tbody>) or its row.
    var rows = document.querySelectorAll("[data-ts]");
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var ts = Number(rows[i].getAttribute("data-ts"));
      var visible = now - ts <= limit;
      rows[i].hidden = !visible;
      if (visible) {
        shown++;
      }
    }
    var buttons = document.querySelectorAll("button[data-age-hours]");
    for (var j = 0; j < buttons.length; j++) {
      var pressed = Number(buttons[j].getAttribute("data-age-hours")) === hours;
      buttons[j].setAttribute("aria-pressed", pressed ? "true" : "false");
    }
    var counter = document.getElementById("shown-count");
    if (counter) {
      counter.textContent = String(shown);
    }
  }

  function fromHash() {
    var m = /(?:^|[#&])age=(\d+)/.exec(window.location.hash);
    return m ? Number(m[1]) : null;
  }

  function init() {
    var buttons = document.querySelectorAll("button[data-age-hours]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        var hours = Number(event.currentTarget.getAttribute("data-age-hours"));
        apply(hours);
        if (window.history && window.history.replaceState) {
          window.history.replaceState(null, "", "#age=" + hours);
        }
      });
    }
    var initial = fromHash();
    if (initial !== null) {
      apply(initial);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
