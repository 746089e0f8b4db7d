// The ferry dashboard's live refresh, written for it (no library). The
// pages work without it: it only fetches the same page again every few
// seconds and swaps in the parts marked data-live, so the numbers move
// without a reload. It never refreshes while a form field has the focus
// (the reader is typing a share) or a guarded start form is open, stops
// when the session has ended, and uses nothing the Content-Security-Policy
// forbids (no inline script, no eval, fetches to this origin only).
(function () {
  'use strict';
  var every = 5000;
  var status = document.querySelector('[data-live-status]');
  if (!document.querySelector('[data-live]') || !window.fetch || !window.DOMParser) {
    return;
  }
  function say(text) {
    if (status) { status.textContent = text; }
  }
  function typing() {
    var a = document.activeElement;
    return a && (a.tagName === 'INPUT' || a.tagName === 'SELECT' || a.tagName === 'TEXTAREA') ||
      !!document.querySelector('[data-live] details[open]'); // a guarded start form being filled in
  }
  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, 'text/html');
    document.querySelectorAll('[data-live]').forEach(function (el) {
      var next = el.id && fresh.getElementById(el.id);
      if (next) { el.replaceWith(document.importNode(next, true)); }
    });
    say('Live: updated ' + new Date().toLocaleTimeString());
  }
  function tick() {
    if (document.hidden || typing()) { return later(); }
    fetch(window.location.href, { credentials: 'same-origin', redirect: 'manual', headers: { 'X-Ferry-Live': '1' } })
      .then(function (res) {
        if (res.type === 'opaqueredirect' || res.status === 401) {
          say('Signed out: reload the page to sign in again.');
          return null;
        }
        if (!res.ok) { throw new Error('HTTP ' + res.status); }
        return res.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        swap(html);
        later();
      })
      .catch(function (err) {
        say('Live refresh failed (' + err.message + '); retrying.');
        later();
      });
  }
  function later() { window.setTimeout(tick, every); }
  say('Live: refreshes every ' + (every / 1000) + ' s.');
  later();
})();
