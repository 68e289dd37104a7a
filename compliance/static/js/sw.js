// The tablet's service worker (served at /sw.js by compliance/offline.py, which fills in the release and the
// files to keep). Plain JavaScript, no library.
//
// - The tablet's static parts are kept at install; the caches are named after the release and the old ones
//   are deleted when a new release takes over.
// - Pages that are safe to show from a copy (the Now screen, the checklists, a run) are fetched from the
//   network first and a copy is kept; without a connection the copy is shown (or the "no connection" page).
// - The point-of-use gate, cycles, loads and packs are never shown from a copy: without a connection they get
//   the page that says "no connection — do not use any item until it has been checked".
// - POSTs are never answered from here: the page's script keeps checklist answers on the tablet itself.
"use strict";
var RELEASE = "__RELEASE__";
var STATIC = "tablet-static-" + RELEASE;
var PAGES = "tablet-pages-" + RELEASE;
var PRECACHE = [__PRECACHE__];
var OFFLINE = "/tablet/offline";
var OFFLINE_GATE = "/tablet/offline?what=gate";

// Pages kept for reading offline, and pages that must never come from a copy.
var KEPT = [/^\/tablet\/home$/, /^\/tablet\/checklists$/, /^\/tablet\/checklists\/\d+\/today$/, /^\/tablet\/runs\/\d+$/];
var NEEDS_SERVER = [/^\/tablet\/treatments/, /^\/decontamination/, /^\/tablet\/cycles/, /^\/tablet\/loads/, /^\/p\//,
                    /^\/tablet\/packs/];

function matches(list, path) {
  return list.some(function (re) { return re.test(path); });
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(STATIC).then(function (cache) { return cache.addAll(PRECACHE); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf("tablet-") === 0 && n !== STATIC && n !== PAGES; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function keep(request, response) {
  if (response && response.ok && response.type === "basic" && !response.redirected) {
    var copy = response.clone();
    caches.open(PAGES).then(function (cache) { cache.put(request.url, copy); });
  }
  return response;
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var path = url.pathname;
  if (request.method === "GET" && PRECACHE.indexOf(path) >= 0) {
    event.respondWith(caches.match(path).then(function (hit) { return hit || fetch(request); }));
    return;
  }
  if (request.mode !== "navigate") return;
  if (matches(NEEDS_SERVER, path)) {
    event.respondWith(fetch(request).catch(function () { return caches.match(OFFLINE_GATE); }));
    return;
  }
  if (request.method === "GET" && matches(KEPT, path) && !url.search) {
    event.respondWith(fetch(request).then(function (response) { return keep(request, response); })
      .catch(function () {
        return caches.match(request.url, { cacheName: PAGES }).then(function (hit) { return hit || caches.match(OFFLINE); });
      }));
    return;
  }
  if (path.indexOf("/tablet") === 0) {
    event.respondWith(fetch(request).catch(function () { return caches.match(OFFLINE); }));
  }
});

// From the page: keep a fresh copy of a page after an answer changed it; forget every copy when a person signs
// out or hands over (the next person must not see the previous person's pages).
self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type === "refresh" && data.path && matches(KEPT, data.path)) {
    event.waitUntil(fetch(data.path, { credentials: "same-origin" }).then(function (response) {
      var request = new Request(new URL(data.path, self.location.origin).href);
      return keep(request, response);
    }).catch(function () {}));
  } else if (data.type === "forget-pages") {
    event.waitUntil(caches.delete(PAGES));
  }
});
