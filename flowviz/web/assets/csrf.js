// flowviz page token: every request this page sends to its own server that is not a GET (Dash callbacks,
// uploads, samples, delete, cancel) carries the session's token from the page's <meta name="flowviz-csrf">
// in the X-CSRF-Token header; the server refuses such requests without it (flowviz/web/security.py).
(function () {
  "use strict";

  function token() {
    var meta = document.querySelector('meta[name="flowviz-csrf"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function sameOrigin(url) {
    try { return new URL(url, window.location.href).origin === window.location.origin; } catch (e) { return false; }
  }

  window.flowvizToken = token;

  var plainFetch = window.fetch;
  window.fetch = function (resource, init) {
    var url = typeof resource === "string" ? resource : (resource && resource.url) || String(resource);
    var method = ((init && init.method) || (resource && resource.method) || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD" && sameOrigin(url)) {
      init = Object.assign({}, init || {});
      var headers = new Headers(init.headers || (resource && resource.headers) || {});
      headers.set("X-CSRF-Token", token());
      init.headers = headers;
    }
    return plainFetch.call(this, resource, init);
  };
})();
