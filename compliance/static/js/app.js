// Small behaviours for every page; no inline script anywhere (the CSP forbids it).
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');

  // htmx requests carry the CSRF token read fresh from the page.
  document.addEventListener("htmx:configRequest", function (e) {
    if (token) e.detail.headers["X-CSRFToken"] = token.content;
  });

  // Forms with data-confirm ask before a destructive step. With data-confirm-after="<field id>", only once that
  // field is filled: an empty one goes to the server, which says what is missing, before anyone is asked.
  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (!q) return;
    var after = e.target.getAttribute("data-confirm-after");
    var needed = after && document.getElementById(after);
    if (needed && needed.value.trim() === "") return;
    if (!window.confirm(q)) e.preventDefault();
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
    input.dispatchEvent(new Event("input", { bubbles: true }));
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

// Sterilisation screens: print a label sheet, tick every device of a step, and reload the cycle form for
// another steriliser (its programme and cycle number) while nothing has been typed yet.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var print = e.target.closest && e.target.closest("[data-print]");
    if (print) { window.print(); return; }
    var all = e.target.closest && e.target.closest("[data-check-all]");
    if (!all) return;
    var boxes = all.form.querySelectorAll('input[type=checkbox][name="' + all.getAttribute("data-check-all") + '"]');
    var tick = Array.prototype.some.call(boxes, function (b) { return !b.checked; });
    Array.prototype.forEach.call(boxes, function (b) { b.checked = tick; });
  });
  document.addEventListener("change", function (e) {
    var select = e.target;
    var param = select.getAttribute && select.getAttribute("data-navigate");
    if (!param || !select.form) return;
    var typed = Array.prototype.some.call(select.form.querySelectorAll("input[type=text], input:not([type]), textarea"),
      function (el) { return el.value.trim() !== ""; });
    if (typed) return;
    var url = new URL(window.location.href);
    url.searchParams.set(param, select.value);
    window.location.assign(url.toString());
  });
})();

// Treatment screens: the point-of-use gate answers a refusal with 409 and a bad scan or a wrong manager
// password with another 4xx; inside [data-swap-errors] those answers are shown like any other.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    var target = e.detail.target;
    if (status >= 400 && status < 500 && target && target.closest && target.closest("[data-swap-errors]")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();

// Checklist screens: a Start form sends once; a number outside its limits shows the note it will need;
// a signature drawn with the finger fills its hidden input as a PNG data URL after every stroke (htmx reads
// the form before a document-level submit listener would run). signature_pad is loaded only where needed.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute || !form.hasAttribute("data-once")) return;
    // Disabled after the browser has read the form, so the tapped button's room is still sent.
    setTimeout(function () {
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
    }, 0);
  });

  document.addEventListener("input", function (e) {
    var input = e.target;
    var form = input.closest && input.closest("form[data-note-out-of-limits]");
    if (!form || input.name !== "value") return;
    var note = form.querySelector(".note-field");
    var n = parseFloat(input.value.replace(",", "."));
    var min = parseFloat(input.getAttribute("data-min"));
    var max = parseFloat(input.getAttribute("data-max"));
    var out = !isNaN(n) && ((!isNaN(min) && n < min) || (!isNaN(max) && n > max));
    if (note) note.hidden = !out && !note.querySelector("textarea").value;
  });

  function setUpPad(box) {
    if (box.signaturePad || typeof window.SignaturePad !== "function") return;
    var canvas = box.querySelector("canvas");
    var field = box.querySelector("input[name=signature]");
    var pad = new window.SignaturePad(canvas, { penColor: "#102a43", minWidth: 1, maxWidth: 3.5 });
    box.signaturePad = pad;
    var size = box.resizePad = function () {
      var ratio = Math.max(window.devicePixelRatio || 1, 1);
      var data = pad.toData();
      canvas.width = canvas.offsetWidth * ratio;
      canvas.height = canvas.offsetHeight * ratio;
      canvas.getContext("2d").scale(ratio, ratio);
      pad.clear();
      pad.fromData(data);
    };
    size();
    window.addEventListener("resize", size);
    pad.addEventListener("endStroke", function () { field.value = pad.isEmpty() ? "" : pad.toDataURL("image/png"); });
    box.querySelector("[data-signature-clear]").addEventListener("click", function () { pad.clear(); field.value = ""; });
  }
  function setUpPads(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-signature]"), setUpPad);
  }
  document.addEventListener("DOMContentLoaded", function () { setUpPads(document); });
  // A pad inside a closed correction form has no size until the form opens.
  document.addEventListener("toggle", function (e) {
    if (!e.target.open) return;
    Array.prototype.forEach.call(e.target.querySelectorAll("[data-signature]"), function (box) {
      if (box.resizePad) box.resizePad(); else setUpPad(box);
    });
  }, true);
  document.addEventListener("htmx:load", function (e) { setUpPads(e.target.parentNode || document); });
})();

// Packs waiting for a load: a tap puts the pack's label in the load's list (or takes it out again); typing or
// scanning into the list still works, and the buttons follow what is typed.
(function () {
  function codes(area) {
    return area.value.split(/[\s,;]+/).filter(function (c) { return c !== ""; });
  }
  function mark(area) {
    var listed = codes(area).map(function (c) { return c.toUpperCase(); });
    var form = area.form;
    Array.prototype.forEach.call(form.querySelectorAll("[data-pack-code]"), function (b) {
      b.setAttribute("aria-pressed", listed.indexOf(b.getAttribute("data-pack-code").toUpperCase()) >= 0 ? "true" : "false");
    });
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-pack-code], [data-pack-all]");
    if (!button) return;
    var area = button.form && button.form.querySelector("textarea[name=pack_codes]");
    if (!area) return;
    var list = codes(area);
    var wanted = button.hasAttribute("data-pack-all")
      ? Array.prototype.map.call(button.form.querySelectorAll("[data-pack-code]"), function (b) { return b.getAttribute("data-pack-code"); })
      : [button.getAttribute("data-pack-code")];
    var upper = list.map(function (c) { return c.toUpperCase(); });
    if (!button.hasAttribute("data-pack-all") && upper.indexOf(wanted[0].toUpperCase()) >= 0) {
      list = list.filter(function (c) { return c.toUpperCase() !== wanted[0].toUpperCase(); });
    } else {
      wanted.forEach(function (c) { if (upper.indexOf(c.toUpperCase()) < 0) list.push(c); });
    }
    area.value = list.join("\n");
    mark(area);
  });
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches("textarea[name=pack_codes]")) mark(e.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("textarea[name=pack_codes]"), mark);
  });
})();
