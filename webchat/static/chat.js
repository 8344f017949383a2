// The customer web chat. Talks to Rasa's socketio channel (session_request / session_confirm /
// user_uttered / bot_uttered) and shows who speaks: the assistant, or the colleague from customer
// service who took the conversation over. The session id with the token the server issued for it
// (event session_token), the messages shown and the handoff state are kept in localStorage, so a
// reload continues the same conversation; the server gives a new session to a request without
// the right token. "Start over" (/restart) clears what the chat stored and starts a new session.
// A signed customer identity from the embedding site (data-customer-identity on this script's tag,
// or window.handoffChat.identity) goes with each message as metadata.customer_identity.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("webchat-config").textContent);
  var scriptTag = document.currentScript || document.querySelector("script[data-customer-identity]");
  var STORE = "northwind.webchat.";
  var MAX_KEPT = 200;
  // Rasa starts a new session after 60 minutes of silence; a handoff does not outlive it.
  var SESSION_IDLE_MS = 60 * 60 * 1000;

  var els = {
    chat: document.getElementById("chat"),
    log: document.getElementById("log"),
    intro: document.getElementById("intro"),
    typing: document.getElementById("typing"),
    form: document.getElementById("composer"),
    input: document.getElementById("message"),
    send: document.getElementById("send"),
    title: document.getElementById("head-title"),
    status: document.getElementById("head-status"),
    avatar: document.getElementById("head-avatar"),
    connection: document.getElementById("connection")
  };

  var notices = (config.notices || []).map(function (notice) {
    return { kind: notice.kind, re: new RegExp(notice.pattern), agentGroup: notice.agent_group };
  });

  // --- what is kept across reloads -------------------------------------------------------------

  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(STORE + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback;
    }
  }

  function save(key, value) {
    try { window.localStorage.setItem(STORE + key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  var sessionId = load("session", null);
  var token = load("token", null);  // {session_id, session_token} as the server sent it
  var items = load("items", []);
  var state = load("state", { mode: "bot", agent: null, wait: null, at: 0 });
  if (state.mode !== "bot" && Date.now() - (state.at || 0) > SESSION_IDLE_MS) {
    state = { mode: "bot", agent: null, wait: null, at: Date.now() };
  }

  // Everything this chat keeps in the browser (localStorage and sessionStorage), for "start over".
  function forgetAll() {
    [window.localStorage, window.sessionStorage].forEach(function (storage) {
      try {
        for (var i = storage.length - 1; i >= 0; i--) {
          var key = storage.key(i);
          if (key && key.indexOf(STORE) === 0) { storage.removeItem(key); }
        }
      } catch (e) { /* storage unavailable */ }
    });
  }

  function setState(changes) {
    Object.keys(changes).forEach(function (key) { state[key] = changes[key]; });
    state.at = Date.now();
    save("state", state);
    showState();
  }

  function keep(item) {
    items.push(item);
    if (items.length > MAX_KEPT) { items = items.slice(items.length - MAX_KEPT); }
    save("items", items);
    state.at = Date.now();
    save("state", state);
  }

  // --- drawing ---------------------------------------------------------------------------------

  function clock(ms) {
    var d = new Date(ms);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function initials(name) {
    var parts = String(name || "").trim().split(/\s+/);
    return ((parts[0] || "?").charAt(0) + (parts.length > 1 ? parts[parts.length - 1].charAt(0) : "")).toUpperCase();
  }

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined && text !== null) { el.textContent = text; }
    return el;
  }

  var introNode = els.intro;

  function scrollDown() { els.log.scrollTop = els.log.scrollHeight; }

  function draw(item) {
    if (els.intro) { els.intro.remove(); els.intro = null; }
    var row;
    if (item.type === "notice") {
      row = node("div", "notice notice-" + item.kind);
      row.setAttribute("role", "note");
      row.appendChild(node("span", "notice-text", item.text));
    } else if (item.type === "customer") {
      row = node("div", "msg from-customer");
      var body = node("div", "msg-body");
      body.appendChild(node("div", "bubble", item.text));
      body.appendChild(node("div", "meta", "You · " + clock(item.at)));
      row.appendChild(body);
    } else {
      var agent = item.type === "agent";
      row = node("div", "msg " + (agent ? "from-agent" : "from-bot"));
      row.appendChild(node("div", "avatar " + (agent ? "avatar-agent" : "avatar-bot"), agent ? initials(item.who) : "N"));
      var content = node("div", "msg-body");
      var who = node("div", "who");
      who.appendChild(node("span", "who-name", agent ? item.who : config.title + " assistant"));
      who.appendChild(node("span", "who-role", agent ? "Customer service" : "Virtual assistant"));
      content.appendChild(who);
      if (item.text) { content.appendChild(node("div", "bubble", item.text)); }
      if (item.image) {
        var img = node("img", "attachment");
        img.src = item.image;
        img.alt = "";
        content.appendChild(img);
      }
      content.appendChild(node("div", "meta", clock(item.at)));
      row.appendChild(content);
    }
    row.setAttribute("data-type", item.type);
    els.log.appendChild(row);
    scrollDown();
  }

  var quickReplies = null;

  function showQuickReplies(replies) {
    if (quickReplies) { quickReplies.remove(); quickReplies = null; }
    if (!replies || !replies.length) { return; }
    quickReplies = node("div", "quick-replies");
    replies.forEach(function (reply) {
      var button = node("button", "quick-reply", reply.title);
      button.type = "button";
      button.addEventListener("click", function () { send(reply.payload || reply.title, reply.title); });
      quickReplies.appendChild(button);
    });
    els.log.appendChild(quickReplies);
    scrollDown();
  }

  function showState() {
    els.chat.setAttribute("data-mode", state.mode);
    if (state.mode === "agent") {
      els.title.textContent = state.agent || "Customer service";
      els.status.textContent = "Customer service · " + config.title;
      els.avatar.textContent = initials(state.agent || "C S");
    } else if (state.mode === "waiting") {
      els.title.textContent = "Connecting you to a colleague";
      els.status.textContent = state.wait || "A colleague will join this chat shortly.";
      els.avatar.textContent = "…";
    } else {
      els.title.textContent = config.title + " assistant";
      els.status.textContent = connected ? "Virtual assistant · online" : "Connecting…";
      els.avatar.textContent = "N";
    }
  }

  var typingTimer = null;

  function typing(on) {
    clearTimeout(typingTimer);
    els.typing.hidden = !on;
    if (on) {
      scrollDown();
      typingTimer = setTimeout(function () { els.typing.hidden = true; }, 12000);
    }
  }

  // --- what arrives --------------------------------------------------------------------------

  function classify(text) {
    for (var i = 0; i < notices.length; i++) {
      var match = notices[i].re.exec(text);
      if (match) {
        return { kind: notices[i].kind, agent: notices[i].agentGroup ? match[notices[i].agentGroup] : null };
      }
    }
    return null;
  }

  function add(item) {
    item.at = item.at || Date.now();
    keep(item);
    draw(item);
  }

  function received(message) {
    typing(false);
    var text = typeof message === "string" ? message : (message && message.text) || "";
    var image = message && message.attachment && message.attachment.payload && message.attachment.payload.src;
    var notice = text ? classify(text) : null;

    if (message && message.notice === "message_too_long") {
      // The server refused what the customer sent (too long): its own notice, nobody speaking.
      add({ type: "notice", kind: "refused", text: text });
      return;
    }
    if (notice && notice.kind === "handoff") {
      if (state.mode !== "agent") { setState({ mode: "waiting", agent: null, wait: null }); }
      add({ type: "notice", kind: "handoff", text: text });
    } else if (notice && notice.kind === "wait") {
      setState({ wait: text });
      add({ type: "notice", kind: "wait", text: text });
    } else if (notice && notice.kind === "joined") {
      setState({ mode: "agent", agent: notice.agent || "A colleague", wait: null });
      add({ type: "notice", kind: "joined", text: text });
    } else if (notice && notice.kind === "back") {
      var who = state.agent;
      setState({ mode: "bot", agent: null, wait: null });
      add({ type: "notice", kind: "back", text: (who ? who + " handed" : "Customer service handed") + " the conversation back to the assistant." });
      add({ type: "bot", text: text });
    } else if (state.mode === "agent" || state.mode === "waiting") {
      // The bot is paused during a handoff: anything else comes from the person.
      add({ type: "agent", who: state.agent || "Customer service", text: text, image: image });
    } else {
      add({ type: "bot", text: text, image: image });
    }
    showQuickReplies(message && message.quick_replies);
  }

  // --- the connection --------------------------------------------------------------------------

  var connected = false;
  var confirmed = false;
  var outbox = [];

  var socket = window.io(config.socketUrl, {
    path: config.socketPath,
    // WebSocket only: no cross-origin long-polling requests to the Rasa server are needed.
    transports: ["websocket"],
    reconnectionDelayMax: 5000
  });

  var requested = null;  // the session id asked for in the last session_request

  function requestSession() {
    requested = sessionId;
    var request = { session_id: sessionId };
    if (sessionId && token && token.session_id === sessionId) { request.session_token = token.session_token; }
    socket.emit("session_request", request);
  }

  socket.on("connect", function () {
    connected = true;
    els.connection.hidden = true;
    requestSession();
  });

  // Sent by the server just before session_confirm: the session and the token that resumes it.
  socket.on("session_token", function (data) {
    if (!data || typeof data.session_id !== "string" || typeof data.session_token !== "string") { return; }
    token = { session_id: data.session_id, session_token: data.session_token };
    save("token", token);
  });

  socket.on("session_confirm", function (confirmedId) {
    var id = typeof confirmedId === "object" && confirmedId ? confirmedId.session_id : confirmedId;
    if (id) {
      if (requested && id !== requested && state.mode !== "bot") {
        // Not resumed (no valid token): a new conversation, which no colleague has taken over.
        setState({ mode: "bot", agent: null, wait: null });
      }
      sessionId = id;
      save("session", id);
    }
    confirmed = true;
    document.body.setAttribute("data-session", sessionId || "");
    showState();
    while (outbox.length) { emit(outbox.shift()); }
  });

  socket.on("bot_uttered", received);

  socket.on("disconnect", function () {
    connected = false;
    confirmed = false;
    els.connection.hidden = false;
    showState();
  });

  socket.on("connect_error", function () {
    els.connection.hidden = false;
  });

  // A signed identity (a JWT) the embedding site gives for a signed-in customer; the server checks it.
  function customerIdentity() {
    var fromPage = window.handoffChat && window.handoffChat.identity;
    var fromTag = scriptTag && scriptTag.getAttribute("data-customer-identity");
    var identity = fromPage || fromTag;
    return typeof identity === "string" && identity ? identity : null;
  }

  function metadata() {
    var data = { page: window.location.pathname, browser: navigator.userAgent, language: navigator.language };
    var identity = customerIdentity();
    if (identity) { data.customer_identity = identity; }
    return data;
  }

  function emit(text) {
    socket.emit("user_uttered", { message: text, session_id: sessionId, metadata: metadata() });
  }

  // Start over: Rasa restarts the old conversation (and tells the helpdesk a handoff ended), then
  // everything the chat stored is forgotten and the server issues a new session.
  function startOver(text) {
    if (confirmed) { emit(text); }
    forgetAll();
    sessionId = null;
    token = null;
    items = [];
    outbox = [];
    state = { mode: "bot", agent: null, wait: null, at: Date.now() };
    typing(false);
    if (quickReplies) { quickReplies.remove(); quickReplies = null; }
    while (els.log.firstChild) { els.log.removeChild(els.log.firstChild); }
    if (introNode) { els.log.appendChild(introNode); els.intro = introNode; }
    confirmed = false;
    document.body.setAttribute("data-session", "");
    showState();
    if (connected) { requestSession(); }
  }

  function send(payload, shown) {
    var text = String(payload || "").trim();
    if (!text) { return; }
    if (/^\/restart\b/.test(text)) { startOver(text); return; }
    if (quickReplies) { quickReplies.remove(); quickReplies = null; }
    add({ type: "customer", text: shown || text });
    if (state.mode === "bot") { typing(true); }
    if (confirmed) { emit(text); } else { outbox.push(text); }
  }

  els.form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(els.input.value);
    els.input.value = "";
    els.input.focus();
  });

  // --- start -------------------------------------------------------------------------------------

  items.forEach(draw);
  showState();
})();
