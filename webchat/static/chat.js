// The customer web chat. Talks to Rasa's socketio channel (session_request / session_confirm /
// user_uttered / bot_uttered) and shows who speaks: the assistant, or the colleague from customer
// service who took the conversation over. The session id with the token the server issued for it
// (event session_token), the messages shown and the handoff state are kept in localStorage, so a
// reload continues the same conversation; the server gives a new session to a request without
// the right token. "Start over" (/restart) clears what the chat stored and starts a new session.
// Who speaks and the handoff state come from each message's metadata (speaker, agent_name,
// handoff, notice, language: handoff/server/socketio.py), never from its text; a resumed session is
// told its state (event handoff_state). The page's words are in config.texts (en, nl): the page's
// language (?lang= or <html data-lang>), else the browser's, then the conversation's.
// A signed customer identity from the embedding site (data-customer-identity on this script's tag,
// or window.handoffChat.identity) goes with each message as metadata.customer_identity.
// Each message carries a message_id; until the server acknowledges it (the turn is done) it stays
// in localStorage, and after a reconnect to the same session it is sent again with the same id: the
// server answers a message it already handled with the same reply instead of handling it twice.
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
    connection: document.getElementById("connection"),
    askPerson: document.getElementById("ask-person"),
    startOver: document.getElementById("start-over")
  };

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
  var pending = load("pending", []);  // sent, not yet acknowledged: [{message_id, text}]
  var state = load("state", { mode: "bot", agent: null, wait: null, at: 0 });
  if (state.mode !== "bot" && Date.now() - (state.at || 0) > SESSION_IDLE_MS) {
    state = { mode: "bot", agent: null, wait: null, at: Date.now() };
  }

  // --- the page's language ---------------------------------------------------------------------

  var texts = config.texts || {};
  var LANGUAGES = Object.keys(texts);

  function known(code) {
    var short = String(code || "").trim().toLowerCase().slice(0, 2);
    return LANGUAGES.indexOf(short) >= 0 ? short : null;
  }

  function pageLanguage() {
    var asked = new URLSearchParams(window.location.search).get("lang");
    var root = document.documentElement;
    return known(asked) || known(root.getAttribute("data-lang")) ||
      known(scriptTag && scriptTag.getAttribute("data-lang"));
  }

  function browserLanguage() {
    var wanted = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language];
    for (var i = 0; i < wanted.length; i++) {
      if (known(wanted[i])) { return known(wanted[i]); }
    }
    return null;
  }

  // The conversation's language (from the messages) wins over the page's and the browser's.
  var language = known(state.language) || pageLanguage() || browserLanguage() || "en";

  function t(key, values) {
    var text = (texts[language] || texts.en || {})[key] || "";
    values = values || {};
    values.title = values.title || config.title;
    return text.replace(/\{(\w+)\}/g, function (all, name) { return values[name] !== undefined ? values[name] : all; });
  }

  function applyLanguage() {
    document.documentElement.lang = language;
    document.title = t("documentTitle");
    document.querySelectorAll("[data-text]").forEach(function (el) { el.textContent = t(el.getAttribute("data-text")); });
    els.input.placeholder = t("placeholder");
    els.log.setAttribute("aria-label", t("conversation"));
  }

  function setLanguage(code) {
    code = known(code);
    if (!code || code === language) { return; }
    language = code;
    state.language = code;
    save("state", state);
    applyLanguage();
    showState();
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
      body.appendChild(node("div", "meta", t("you") + " · " + clock(item.at)));
      row.appendChild(body);
    } else {
      var agent = item.type === "agent";
      row = node("div", "msg " + (agent ? "from-agent" : "from-bot"));
      row.appendChild(node("div", "avatar " + (agent ? "avatar-agent" : "avatar-bot"), agent ? initials(item.who) : "N"));
      var content = node("div", "msg-body");
      var who = node("div", "who");
      who.appendChild(node("span", "who-name", agent ? item.who : t("assistant")));
      who.appendChild(node("span", "who-role", agent ? t("customerService") : t("virtualAssistant")));
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
    document.body.setAttribute("data-handoff", state.mode === "bot" ? "none" : state.mode);
    if (state.mode === "agent") {
      els.title.textContent = state.agent || t("customerService");
      els.status.textContent = t("agentStatus");
      els.avatar.textContent = initials(state.agent || "C S");
    } else if (state.mode === "waiting") {
      els.title.textContent = t("connectingTitle");
      els.status.textContent = state.wait || t("waitingStatus");
      els.avatar.textContent = "…";
    } else {
      els.title.textContent = t("assistant");
      els.status.textContent = connected ? t("online") : t("connecting");
      els.avatar.textContent = "N";
    }
    // Asking for a person makes sense only while the bot is speaking.
    els.askPerson.hidden = state.mode !== "bot";
    els.askPerson.disabled = state.mode !== "bot";
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

  function add(item) {
    item.at = item.at || Date.now();
    keep(item);
    draw(item);
  }

  var MODES = { none: "bot", ended: "bot", waiting: "waiting", agent: "agent" };

  // The handoff state a message or a resumed session says: the header follows it.
  function follow(meta) {
    var mode = MODES[meta.handoff];
    if (!mode) { return; }
    if (mode === "agent") {
      setState({ mode: "agent", agent: meta.agent_name || state.agent || t("aColleague"), wait: null });
    } else if (mode === "waiting") {
      setState({ mode: "waiting", agent: null, wait: state.mode === "waiting" ? state.wait : null });
    } else if (state.mode !== "bot") {
      setState({ mode: "bot", agent: null, wait: null });
    }
  }

  function received(message) {
    typing(false);
    var text = typeof message === "string" ? message : (message && message.text) || "";
    var image = message && message.attachment && message.attachment.payload && message.attachment.payload.src;
    var meta = (message && typeof message.metadata === "object" && message.metadata) || {};
    if (meta.language) { setLanguage(meta.language); }

    if (message && message.notice === "message_too_long") {
      // The server refused what the customer sent (too long): its own notice, nobody speaking.
      add({ type: "notice", kind: "refused", text: text });
      return;
    }
    var notice = meta.notice;
    if (meta.speaker === "agent") {
      follow(meta);
      add({ type: "agent", who: meta.agent_name || state.agent || t("aColleague"), text: text, image: image });
    } else if (notice === "handoff" || notice === "wait" || notice === "joined") {
      follow(meta);
      if (notice === "wait") { setState({ wait: text }); }
      add({ type: "notice", kind: notice, text: text });
    } else if (notice === "back") {
      var who = state.agent;
      follow(meta);
      add({ type: "notice", kind: "back", text: who ? t("handedBack", { name: who }) : t("handedBackNoName") });
      add({ type: "bot", text: text, image: image });
    } else {
      follow(meta);
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
    var resumed = Boolean(id && requested && id === requested);
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
    // Messages of this session the server never acknowledged: again, with their ids (a new
    // session is another conversation, so they are dropped).
    if (resumed) {
      pending.slice().forEach(function (message) { emit(message.text, message.message_id); });
    } else if (pending.length) {
      pending = [];
      savePending();
    }
    while (outbox.length) { emit(outbox.shift()); }
  });

  socket.on("bot_uttered", received);

  // After a resumed session_confirm: the handoff state now (it may have changed while away).
  socket.on("handoff_state", function (data) {
    if (!data || typeof data !== "object") { return; }
    if (data.language) { setLanguage(data.language); }
    follow(data);
  });

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

  function newMessageId() {
    var cryptoApi = window.crypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") { return cryptoApi.randomUUID(); }
    var bytes = new Uint8Array(16);
    if (cryptoApi && cryptoApi.getRandomValues) { cryptoApi.getRandomValues(bytes); }
    else { for (var i = 0; i < bytes.length; i++) { bytes[i] = Math.floor(Math.random() * 256); } }
    return Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
  }

  // The unacknowledged messages, kept only while there are any (start over leaves no key behind,
  // also when the acknowledgement of its /restart arrives after the storage was emptied).
  function savePending() {
    if (pending.length) { save("pending", pending); return; }
    try { window.localStorage.removeItem(STORE + "pending"); } catch (e) { /* private mode */ }
  }

  function acknowledged(messageId) {
    var left = pending.filter(function (message) { return message.message_id !== messageId; });
    if (left.length === pending.length) { return; }
    pending = left;
    savePending();
  }

  // A new message gets a new id; a message sent again (messageId given) keeps its own.
  function emit(text, messageId) {
    var id = messageId || newMessageId();
    if (!messageId) {
      pending.push({ message_id: id, text: text });
      savePending();
    }
    socket.emit("user_uttered", { message: text, message_id: id, session_id: sessionId, metadata: metadata() },
      function () { acknowledged(id); });
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
    pending = [];
    state = { mode: "bot", agent: null, wait: null, language: language, at: Date.now() };
    typing(false);
    if (quickReplies) { quickReplies.remove(); quickReplies = null; }
    while (els.log.firstChild) { els.log.removeChild(els.log.firstChild); }
    if (introNode) { els.log.appendChild(introNode); els.intro = introNode; applyLanguage(); }
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

  els.askPerson.addEventListener("click", function () {
    if (state.mode === "bot") { send(t("talkToPersonMessage")); }
  });

  els.startOver.addEventListener("click", function () { send("/restart"); });

  // --- start -------------------------------------------------------------------------------------

  applyLanguage();
  items.forEach(draw);
  showState();
})();
