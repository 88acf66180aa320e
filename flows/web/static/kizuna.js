// Keeps a live part of a page current without reloading it: an element with
// data-refresh="<url>" is replaced by what that URL answers (the same server-rendered HTML)
// every two seconds, until the answer no longer asks to be refreshed (the run finished).
(function () {
  "use strict";
  var EVERY_MS = 2000;
  function follow(box) {
    var url = box.getAttribute("data-refresh");
    fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var t = document.createElement("template");
        t.innerHTML = html.trim();
        var fresh = t.content.firstElementChild;
        if (!fresh || fresh.id !== box.id) { return; }
        box.replaceWith(fresh);
        if (fresh.hasAttribute("data-refresh")) { setTimeout(function () { follow(fresh); }, EVERY_MS); }
      })
      .catch(function () { setTimeout(function () { follow(box); }, EVERY_MS * 3); });
  }
  document.querySelectorAll("[data-refresh]").forEach(function (box) {
    setTimeout(function () { follow(box); }, EVERY_MS);
  });
})();
