/* The web chat for any page: <script src="https://HOST/widget.js" data-key="CHAT_KEY" async></script>
   Adds a button that opens the chat in an iframe served by the same host. No build step. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var key = script.getAttribute("data-key") || "";
  var base = new URL(script.src).origin;
  var open = false;
  // The customer's id and conversation are kept here, on the company's own site: browsers
  // often deny storage to the embedded chat page.
  var store = null;
  try { store = window.localStorage; store.getItem("supportbot.user"); } catch (denied) { store = null; }
  var user = store && store.getItem("supportbot.user");
  if (!user) {
    user = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());
    if (store) { store.setItem("supportbot.user", user); }
  }
  var conversation = store && store.getItem("supportbot.conversation");
  var frame = document.createElement("iframe");
  frame.src = base + "/chat#key=" + encodeURIComponent(key) + "&user=" + encodeURIComponent(user) +
    (conversation ? "&conversation=" + encodeURIComponent(conversation) : "");
  window.addEventListener("message", function (event) {
    var said = event.origin === base && event.data && event.data.supportbot;
    if (said && said.conversation && store) {
      store.setItem("supportbot.conversation", String(said.conversation));
    }
  });
  frame.title = script.getAttribute("data-title") || "Help chat";
  frame.setAttribute("data-supportbot", "chat");
  frame.style.cssText = "position:fixed;right:16px;bottom:76px;width:370px;max-width:calc(100vw - 32px);" +
    "height:560px;max-height:calc(100vh - 96px);border:0;border-radius:12px;" +
    "box-shadow:0 6px 24px rgba(0,0,0,.2);z-index:2147483000;display:none;background:#fff";
  var button = document.createElement("button");
  button.type = "button";
  button.textContent = script.getAttribute("data-label") || "Help";
  button.setAttribute("data-supportbot", "open");
  button.setAttribute("aria-expanded", "false");
  button.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483000;border:0;" +
    "border-radius:24px;padding:12px 18px;background:#24324d;color:#fff;font:600 15px system-ui;" +
    "cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.25)";
  button.addEventListener("click", function () {
    open = !open;
    frame.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", String(open));
  });
  function add() {
    document.body.appendChild(frame);
    document.body.appendChild(button);
  }
  if (document.body) { add(); } else { document.addEventListener("DOMContentLoaded", add); }
})();
