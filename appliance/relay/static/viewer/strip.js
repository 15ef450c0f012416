// The first script the viewer page runs (a classic script, before any module and any wait): the
// link's key leaves the address bar at once, on every path, even in a browser too old to run the
// rest of the page, which then says it cannot play the stream. viewer.js takes the fragment from
// here. Plain ES5 on purpose.
(function () {
  var hash = location.hash || "";
  window.viewerFragment = hash.length > 1 ? hash : "";
  if (hash.length > 1) {
    if (window.history && history.replaceState) {
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      location.hash = "";
    }
  }
  if ("noModule" in document.createElement("script")) return;
  // No modules: viewer.js never runs.
  document.addEventListener("DOMContentLoaded", function () {
    var fr = /^fr/i.test(navigator.language || "");
    var message = document.getElementById("message");
    var detail = document.getElementById("detail");
    if (message) message.innerText = fr ? "Ce navigateur ne peut pas lire la vidéo" : "This browser cannot play the stream";
    if (detail) detail.innerText = fr
      ? "Ouvrez à nouveau le lien (depuis la carte ou le message) dans Safari ou Chrome à jour."
      : "Open the link again (from the card or the message) in an up-to-date Safari or Chrome.";
  });
})();
