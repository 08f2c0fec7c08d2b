/* The web chat page. Everything a customer, the bot or an operator wrote is shown with
   textContent, never parsed as HTML. The customer's id and conversation live in localStorage,
   so the conversation survives reloads; the transcript itself is read back from the server. */
(function () {
  "use strict";
  var MODEL = "supportbot";
  var params = new URLSearchParams(location.hash.slice(1));
  var key = params.get("key") || "";
  var store = storage();
  // Embedded by widget.js, the host page keeps the ids (third-party storage is often blocked).
  if (params.get("user")) { store.setItem("supportbot.user", params.get("user")); }
  if (params.get("conversation")) {
    store.setItem("supportbot.conversation", params.get("conversation"));
  }
  var user = store.getItem("supportbot.user");
  if (!user) {
    user = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());
    store.setItem("supportbot.user", user);
  }
  var list = document.getElementById("messages");
  var form = document.getElementById("ask");
  var input = document.getElementById("text");
  var person = document.getElementById("person");
  var conversation = Number(store.getItem("supportbot.conversation")) || null;
  var lastTurn = 0;
  var watching = null;
  var busy = false;

  function storage() {
    // Some browsers deny storage to embedded pages; then the chat lasts as long as the page.
    try {
      window.localStorage.setItem("supportbot.probe", "1");
      return window.localStorage;
    } catch (denied) {
      var kept = {};
      return {
        getItem: function (name) { return name in kept ? kept[name] : null; },
        setItem: function (name, value) { kept[name] = String(value); },
        removeItem: function (name) { delete kept[name]; }
      };
    }
  }

  function headers() {
    return { "Authorization": "Bearer " + key, "Content-Type": "application/json" };
  }

  function bubble(role, text) {
    var item = document.createElement("li");
    item.className = "message " + role;
    item.setAttribute("data-role", role);
    if (role === "operator") {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = "Support team";
      item.appendChild(who);
    }
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.appendChild(body);
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
    return item;
  }

  function notice(text) { return bubble("notice", text); }

  function remember(id) {
    if (id && id !== conversation) {
      conversation = id;
      lastTurn = 0;
      store.setItem("supportbot.conversation", String(id));
      if (window.parent !== window) {
        window.parent.postMessage({ supportbot: { conversation: id } }, "*");
      }
    }
  }

  function rating(item, turn, chosen) {
    var row = document.createElement("div");
    row.className = "actions feedback";
    [["👍", 1, "Helpful"], ["👎", -1, "Not helpful"]].forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = choice[0];
      button.title = choice[2];
      button.setAttribute("aria-label", choice[2]);
      button.setAttribute("data-vote", String(choice[1]));
      button.setAttribute("aria-pressed", String(chosen === choice[1]));
      button.addEventListener("click", function () { vote(row, turn, choice[1]); });
      row.appendChild(button);
    });
    item.appendChild(row);
  }

  function vote(row, turn, value) {
    fetch("/api/conversations/" + conversation + "/turns/" + turn + "/feedback", {
      method: "POST", headers: headers(), body: JSON.stringify({ value: value })
    }).then(function (response) {
      if (!response.ok) { throw new Error("feedback " + response.status); }
      row.querySelectorAll("button").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.getAttribute("data-vote")) === value));
      });
      row.setAttribute("data-sent", String(value));
    }).catch(function () { notice("Sorry, your rating did not reach us."); });
  }

  function sources(item, found) {
    if (!found.length) { return; }
    var listing = document.createElement("ul");
    listing.className = "sources";
    found.slice(0, 1).forEach(function (source) {
      var line = document.createElement("li");
      line.textContent = source.question;
      listing.appendChild(line);
    });
    item.appendChild(listing);
  }

  function options(item, offered) {
    var row = document.createElement("div");
    row.className = "actions options";
    offered.forEach(function (option) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = option.question;
      button.setAttribute("data-option", String(option.number));
      button.addEventListener("click", function () {
        row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        send(String(option.number), option.question);
      });
      row.appendChild(button);
    });
    item.appendChild(row);
  }

  function finish(item, ext) {
    remember(ext.conversation_id);
    lastTurn = Math.max(lastTurn, ext.turn_id);
    item.querySelector(".text").textContent = ext.text;  // authoritative over the stream
    item.setAttribute("data-action", ext.action);
    if (ext.action === "answer") {
      sources(item, ext.sources);
      rating(item, ext.turn_id, null);
    } else if (ext.action === "clarify") {
      options(item, ext.options);
    }
    if (ext.escalate || ext.action === "relayed") { watch(); }
  }

  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (part) {
        if (part.done) { return; }
        buffer += decoder.decode(part.value, { stream: true });
        var cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          var name = "message";
          var data = [];
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) { name = line.slice(7); }
            if (line.indexOf("data: ") === 0) { data.push(line.slice(6)); }
          });
          if (data.length) { onEvent(name, data.join("\n")); }
        }
        return pump();
      });
    }
    return pump();
  }

  function send(text, shown) {
    if (busy) { return; }
    busy = true;
    bubble("customer", shown || text);
    var item = bubble("bot", "…");
    var streamed = "";
    var ext = null;
    fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ model: MODEL, user: user, stream: true,
                             messages: [{ role: "user", content: text }] })
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) { throw new Error(body.error.message); });
      }
      return readEvents(response, function (name, data) {
        if (data === "[DONE]") { return; }
        var chunk = JSON.parse(data);
        var delta = chunk.choices[0].delta.content;
        if (delta) {
          streamed += delta;
          item.querySelector(".text").textContent = streamed;
          list.scrollTop = list.scrollHeight;
        }
        if (chunk.supportbot) { ext = chunk.supportbot; }
      });
    }).then(function () {
      if (ext) { finish(item, ext); }
    }).catch(function (error) {
      item.className = "message notice";
      item.querySelector(".text").textContent = "Sorry, that did not go through: " + error.message;
    }).then(function () { busy = false; });
  }

  function watch() {
    if (watching || !conversation) { return; }
    var controller = new AbortController();
    watching = controller;
    person.disabled = true;
    fetch("/api/conversations/" + conversation + "/events?after=" + lastTurn, {
      headers: headers(), signal: controller.signal
    }).then(function (response) {
      if (!response.ok) { throw new Error("events " + response.status); }
      return readEvents(response, function (name, data) {
        var event = JSON.parse(data);
        if (name === "operator") {
          lastTurn = Math.max(lastTurn, event.turn_id);
          var item = bubble("operator", event.text);
          rating(item, event.turn_id, null);
        } else if (name === "handover" && !event.open) {
          notice("You are back with the bot. Ask me anything.");
          controller.abort();
        }
      });
    }).catch(function () { /* aborted, or the connection dropped: the next reply re-opens it */ })
      .then(function () {
        if (watching === controller) { watching = null; }
        person.disabled = false;
      });
  }

  function restore() {
    if (!conversation) {
      notice("Hello! Ask me anything about our shop.");
      return;
    }
    fetch("/api/conversations/" + conversation, { headers: headers() }).then(function (response) {
      if (response.status === 404) { throw new Error("gone"); }
      if (!response.ok) { throw new Error("conversation " + response.status); }
      return response.json();
    }).then(function (found) {
      found.turns.forEach(function (turn) {
        lastTurn = Math.max(lastTurn, turn.id);
        // The person button sends "/human", as on Telegram; show what the customer pressed.
        var shown = turn.role === "customer" && turn.text === "/human" ? person.textContent : turn.text;
        var item = bubble(turn.role, shown);
        if (turn.role === "operator" || turn.action === "answer") {
          rating(item, turn.id, turn.feedback);
        }
      });
      if (found.closed_at) { notice("This conversation was closed; write to start a new one."); }
      if (found.open_handover) { watch(); }
    }).catch(function () {
      store.removeItem("supportbot.conversation");
      conversation = null;
      notice("Hello! Ask me anything about our shop.");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  person.addEventListener("click", function () { send("/human", person.textContent); });
  restore();
})();
