// The console's live updates: listens to /console/events (Server-Sent Events) and, when
// something this page shows has changed (a hand-over opened, taken or closed; a new message), fetches the page again and swaps in its <main>.
// A plain script (no build step, no inline code, so the console's CSP allows it). While an
// operator types in a field the swap waits, so no draft is lost.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) return;
  var shown = /^\/console\/conversations\/(\d+)/.exec(location.pathname);
  var conversation = shown ? Number(shown[1]) : null;
  var pending = false;
  var busy = false;

  function typing() {
    var active = document.activeElement;
    return active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT") && active.value;
  }

  function refresh() {
    if (busy || typing()) {
      pending = true;
      return;
    }
    pending = false;
    busy = true;
    fetch(location.href, {credentials: "same-origin"}).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      busy = false;
      if (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("main[data-live]");
        if (fresh && fresh.innerHTML !== main.innerHTML) main.innerHTML = fresh.innerHTML;
      }
      if (pending) refresh();
    }, function () {
      busy = false;
      pending = true;
    });
  }

  // A swap put off while someone typed happens once the field is left or emptied.
  setInterval(function () {
    if (pending) refresh();
  }, 1000);

  function read(event) {
    try {
      return JSON.parse(event.data);
    } catch (error) {
      return {};
    }
  }

  var source = new EventSource("/console/events");
  source.addEventListener("handover", function (event) {
    var data = read(event);
    if (conversation === null || data.conversation === conversation) refresh();
  });
  source.addEventListener("message", function (event) {
    var data = read(event);
    if (conversation === null ? data.role === "customer" : data.conversation === conversation) {
      refresh();
    }
  });
  // After a broken stream the browser reconnects by itself; catch up on what was missed.
  source.addEventListener("open", function () {
    if (source.opened) refresh();
    source.opened = true;
  });
})();
