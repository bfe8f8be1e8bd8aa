// Live parts of a console page, refreshed without a reload. An element with data-live="<url>" is replaced, every
// data-every milliseconds, by the "html" its URL answers in JSON: markup the console rendered from the same
// template as the page (escaped there, by Jinja2), so nothing is assembled here. Served by the console itself;
// the page's Content-Security-Policy allows no other script.
(function () {
  "use strict";

  function problem(shown) {
    var note = document.getElementById("live-problem");
    if (note) note.hidden = !shown;
  }

  function watch(element) {
    var every = Number(element.getAttribute("data-every")) || 3000;
    var shown = null;

    function refresh() {
      if (document.hidden) {  // nobody is looking: ask again later, not now
        window.setTimeout(refresh, every);
        return;
      }
      fetch(element.getAttribute("data-live"), {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (body) {
          problem(false);
          if (body.html === shown) return;
          shown = body.html;
          var parsed = new DOMParser().parseFromString(body.html, "text/html");
          element.replaceChildren.apply(element, Array.prototype.slice.call(parsed.body.childNodes));
          element.setAttribute("data-updated", String(Date.now()));
        })
        .catch(function () {
          problem(true);
        })
        .finally(function () {
          window.setTimeout(refresh, every);
        });
    }

    window.setTimeout(refresh, every);
  }

  document.querySelectorAll("[data-live]").forEach(watch);
})();
