// Small behaviours for every page; no inline script anywhere (the CSP forbids it).
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');

  // htmx requests carry the CSRF token read fresh from the page.
  document.addEventListener("htmx:configRequest", function (e) {
    if (token) e.detail.headers["X-CSRFToken"] = token.content;
  });

  // Forms with data-confirm ask before a destructive step.
  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  });

  // The PIN keypad types into its input.
  document.addEventListener("click", function (e) {
    var key = e.target.closest && e.target.closest("[data-key]");
    if (!key) return;
    var pad = key.closest(".keypad");
    var input = pad && document.getElementById(pad.getAttribute("data-target"));
    if (!input) return;
    var k = key.getAttribute("data-key");
    if (k === "clear") input.value = input.value.slice(0, -1);
    else if (input.value.length < (input.maxLength > 0 ? input.maxLength : 6)) input.value += k;
    input.focus();
  });

  // On a shared tablet, return to the person picker after the configured idle time.
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (idle > 0) {
    var timer;
    var reset = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var form = document.createElement("form");
        form.method = "post";
        form.action = body.getAttribute("data-idle-logout");
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "csrf_token"; input.value = token ? token.content : "";
        form.appendChild(input);
        document.body.appendChild(form);
        form.submit();
      }, idle * 1000);
    };
    ["pointerdown", "keydown", "touchstart", "scroll"].forEach(function (ev) {
      document.addEventListener(ev, reset, { passive: true });
    });
    reset();
  }
})();
