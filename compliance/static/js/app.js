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
        // The next person must not see this person's pages from the tablet's copies.
        if (navigator.serviceWorker && navigator.serviceWorker.controller) {
          navigator.serviceWorker.controller.postMessage({ type: "forget-pages" });
        }
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

// The tablet offline (issue 16). The service worker (/sw.js) keeps copies of the Now screen and the checklists
// opened here. A checklist answer given without a connection is kept on this tablet (IndexedDB) with its
// idempotency key, the person who gave it and the time it was given, shown as "saved on this tablet, not yet
// sent", and sent in order when the connection is back: the server stores each once (the key) with both times.
// The queue is per tablet (this browser) and per person: only the signed-in person's answers are sent, as theirs.
// The gate, cycles and loads are never answered without the server: their screens say so and keep nothing.
(function () {
  "use strict";
  var body = document.body;
  if (!body || !body.hasAttribute("data-offline") || !window.indexedDB || !window.fetch) return;
  var banner = document.getElementById("offline-banner");
  var person = body.getAttribute("data-person") || "";
  var ANSWER = /^\/tablet\/runs\/(\d+)\/answers$/;
  var waiting = 0;     // this person's answers kept on the tablet
  var refused = 0;     // … refused by the server when sent (shown until the page is left)
  var sending = false;

  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});

  function text(name, n) { return (banner.getAttribute("data-" + name) || "").replace("{n}", String(n)); }
  function worker(message) {
    if ("serviceWorker" in navigator && navigator.serviceWorker.controller) navigator.serviceWorker.controller.postMessage(message);
  }

  // --- the queue, in IndexedDB -------------------------------------------------------------------------
  function db() {
    return new Promise(function (ok, ko) {
      var r = indexedDB.open("tablet-queue", 1);
      r.onupgradeneeded = function () {
        r.result.createObjectStore("answers", { keyPath: "seq", autoIncrement: true })
          .createIndex("key", "idempotency_key", { unique: true });
      };
      r.onsuccess = function () { ok(r.result); };
      r.onerror = function () { ko(r.error); };
    });
  }
  function store(mode, work) {
    return db().then(function (d) {
      return new Promise(function (ok, ko) {
        var t = d.transaction("answers", mode);
        var request = work(t.objectStore("answers"));
        t.oncomplete = function () { d.close(); ok(request ? request.result : undefined); };
        t.onerror = t.onabort = function () { d.close(); ko(t.error); };
      });
    });
  }
  function mine() {
    return store("readonly", function (s) { return s.getAll(); }).then(function (rows) {
      return rows.filter(function (r) { return r.person === person; }).sort(function (a, b) { return a.seq - b.seq; });
    });
  }
  function add(entry) { return store("readwrite", function (s) { return s.add(entry); }).catch(function () {}); }
  function drop(seq) { return store("readwrite", function (s) { return s.delete(seq); }); }

  // --- what the person sees ------------------------------------------------------------------------------
  function show() {
    if (!banner) return;
    var offline = !navigator.onLine;
    var lines = [];
    if (offline) lines.push(text("offline", waiting));
    else if (waiting) lines.push(text("waiting", waiting));
    if (refused) lines.push(text("refused", refused));
    banner.textContent = lines.join(" ");
    banner.hidden = lines.length === 0;
    banner.classList.toggle("is-offline", offline);
  }
  function count() {
    if (!person) { show(); return Promise.resolve(); }
    return mine().then(function (rows) { waiting = rows.length; show(); return rows; });
  }
  function markPending(form, entry) {
    form.classList.add("pending");
    Array.prototype.forEach.call(form.querySelectorAll("button, input, textarea"), function (el) { el.disabled = true; });
    var line = form.querySelector(".pending-line") || document.createElement("p");
    line.className = "pending-line";
    line.setAttribute("role", "status");
    line.textContent = text("pending") + (entry.shown ? ": " + entry.shown : "");
    form.appendChild(line);
  }
  function say(form, name) {
    var line = form.querySelector(".offline-error") || document.createElement("p");
    line.className = "error big-error offline-error";
    line.setAttribute("role", "alert");
    line.textContent = text(name);
    form.appendChild(line);
  }

  // --- catching an answer that can't be sent now -----------------------------------------------------------
  function isAnswer(elt, path) {
    return elt && elt.matches && elt.matches("form.checklist-item") && ANSWER.test(path || "");
  }
  function pathOf(detail) {
    var p = (detail.requestConfig && detail.requestConfig.path) || detail.path || "";
    try { return new URL(p, window.location.href).pathname; } catch (e) { return p; }
  }
  // The server's clock, as its last answer's Date header gave it: a kept answer's time is said in the server's
  // time, so a tablet whose clock is wrong still gives the right time (the server refuses one in the future or
  // before the run started). An answer sent at once carries no time of its own: the server's now is used.
  function skew() {
    try { return parseInt(localStorage.getItem("tablet-clock-skew") || "0", 10) || 0; } catch (err) { return 0; }
  }
  document.addEventListener("htmx:afterRequest", function (e) {
    var date = e.detail.xhr && e.detail.xhr.getResponseHeader && e.detail.xhr.getResponseHeader("Date");
    var server = date ? Date.parse(date) : NaN;
    if (!isNaN(server)) {
      try { localStorage.setItem("tablet-clock-skew", String(server - Date.now())); } catch (err) { /* private */ }
    }
  });
  document.addEventListener("htmx:configRequest", function (e) {
    if (!isAnswer(e.detail.elt, e.detail.path)) return;
    var data = {};
    var source = e.detail.formData || e.detail.parameters;
    if (source && source.forEach) source.forEach(function (v, k) { if (typeof v === "string") data[k] = v; });
    else for (var k in e.detail.parameters) data[k] = String(e.detail.parameters[k]);
    data.given_at = new Date(Date.now() + skew()).toISOString();
    e.detail.elt._answer = { data: data, path: e.detail.path };
  });

  function needsNote(form, data) {
    if ((data.note || "").trim()) return false;
    if (form.getAttribute("data-note-when") === "no" && data.value === "no") return true;
    var input = form.querySelector("input[name=value][data-min], input[name=value][data-max]");
    if (!input) return false;
    var n = parseFloat(String(data.value || "").replace(",", "."));
    var min = parseFloat(input.getAttribute("data-min"));
    var max = parseFloat(input.getAttribute("data-max"));
    return !isNaN(n) && ((!isNaN(min) && n < min) || (!isNaN(max) && n > max));
  }

  function keepOnTablet(form) {
    var pending = form._answer;
    if (!pending || !person) return;
    if (form.querySelector("input[type=file], input[name=signature]")) { say(form, "needs-server"); return; }
    if (needsNote(form, pending.data)) {
      var note = form.querySelector(".note-field");
      if (note) note.hidden = false;
      say(form, "note-needed");
      return;
    }
    var chosen = form.querySelector("button[name=value][value='" + (pending.data.value || "").replace(/'/g, "") + "']");
    var entry = {
      person: person, path: new URL(pending.path, window.location.href).pathname, data: pending.data,
      idempotency_key: pending.data.idempotency_key, given_at: pending.data.given_at,
      item_key: form.getAttribute("data-item-key"),
      shown: chosen ? chosen.textContent.trim() : (pending.data.value || "")
    };
    add(entry).then(function () { markPending(form, entry); return count(); });
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    if (navigator.onLine) return;
    var elt = e.detail.elt;
    if (isAnswer(elt, pathOf(e.detail))) { e.preventDefault(); keepOnTablet(elt); return; }
    if (elt && elt.closest && elt.closest("#gate, .needs-server")) { e.preventDefault(); noConnection(elt); }
  });
  document.addEventListener("htmx:sendError", function (e) {
    var elt = e.detail.elt;
    if (isAnswer(elt, pathOf(e.detail))) keepOnTablet(elt);
    else if (elt && elt.closest && elt.closest("#gate, .needs-server")) noConnection(elt);
    show();
  });

  // The gate (and the other screens that need the server): never an answer from a copy; nothing kept.
  function noConnection(elt) {
    var panel = elt.closest("#gate") || elt.closest(".needs-server");
    Array.prototype.forEach.call(panel.querySelectorAll(".gate, .gate-offline"), function (el) { el.remove(); });
    var alert = document.createElement("section");
    alert.className = "gate gate-offline";
    alert.setAttribute("role", "alert");
    alert.innerHTML = "<p class=\"gate-title\"></p>";
    alert.firstChild.textContent = text("gate");
    var form = elt.closest("form") || elt;
    form.parentNode.insertBefore(alert, form.nextSibling);
  }

  // After an answer was stored, the copy of this page is refreshed (a reload offline shows what was answered).
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.successful && /^\/tablet\/runs\/\d+$/.test(window.location.pathname)) {
      worker({ type: "refresh", path: window.location.pathname });
    }
  });

  // --- sending, in order, once the connection is back --------------------------------------------------------
  function send() {
    if (sending || !navigator.onLine || !person) return Promise.resolve();
    sending = true;
    var sentHere = false;
    return mine().then(function (rows) {
      if (!rows.length) return;
      return fetch("/tablet/token", { credentials: "same-origin", cache: "no-store", redirect: "manual" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (token) {
          if (!token) return;  // signed out meanwhile: the answers wait for this person
          return rows.reduce(function (chain, row) {
            return chain.then(function (go) {
              if (!go) return false;
              var form = new URLSearchParams(row.data);
              form.set("csrf_token", token.csrf_token);
              return fetch(row.path, {
                method: "POST", body: form, credentials: "same-origin", redirect: "manual",
                headers: { "HX-Request": "true", "X-CSRFToken": token.csrf_token }
              }).then(function (r) {
                if (r.status >= 500 || r.status === 0 || r.status === 401 || r.status === 403) return false;  // later
                if (r.status >= 400) {  // refused with a reason: not kept; said on this page and the next
                  refused += 1;
                  try { sessionStorage.setItem("tablet-refused", String(refused)); } catch (err) { /* private mode */ }
                }
                if (row.path.replace(/\/answers$/, "") === window.location.pathname) sentHere = true;
                return drop(row.seq).then(function () { return true; });
              }, function () { return false; });
            });
          }, Promise.resolve(true));
        });
    }).then(function () {
      sending = false;
      return count();
    }, function () { sending = false; }).then(function () {
      if (sentHere && !waiting) window.location.reload();
    });
  }

  function markThisRun() {
    var m = /^\/tablet\/runs\/(\d+)$/.exec(window.location.pathname);
    if (!m || !person) return Promise.resolve();
    return mine().then(function (rows) {
      rows.forEach(function (row) {
        if (row.path !== window.location.pathname + "/answers") return;
        var form = document.querySelector("form.checklist-item[data-item-key='" + row.item_key + "']");
        if (form) markPending(form, row);
      });
    });
  }

  // Signing out or handing over with answers still kept here: say so first; and forget the copies of pages.
  document.addEventListener("submit", function (e) {
    var action = e.target.getAttribute && (e.target.getAttribute("action") || "");
    if (!/\/(logout|tablet\/switch)$/.test(action)) return;
    if (waiting && !window.confirm(text("sign-out", waiting))) { e.preventDefault(); return; }
    worker({ type: "forget-pages" });
  }, true);

  window.addEventListener("online", function () { show(); send(); });
  window.addEventListener("offline", show);
  document.addEventListener("DOMContentLoaded", function () {
    try {
      refused = parseInt(sessionStorage.getItem("tablet-refused") || "0", 10) || 0;
      sessionStorage.removeItem("tablet-refused");
    } catch (err) { refused = 0; }
    count().then(markThisRun).then(send);
  });
  setInterval(send, 20000);
})();
