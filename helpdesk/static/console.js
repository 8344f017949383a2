// The agent console's live behaviour: an event stream from the helpdesk says which ticket changed;
// the page then fetches its changed parts (HTML rendered by the server) and swaps them in, keeping
// whatever the agent is typing. Without JavaScript the pages still work; they just do not update.
(function () {
  "use strict";

  var body = document.body;
  var ticketId = body.getAttribute("data-ticket");
  var baseTitle = document.title.replace(/^\(\d+\)\s*/, "");

  function duration(seconds) {
    seconds = Math.max(Math.floor(seconds), 0);
    if (seconds < 60) { return seconds + " s"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " min"; }
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 24) { return minutes ? hours + " h " + minutes + " min" : hours + " h"; }
    var days = Math.floor(hours / 24);
    hours = hours % 24;
    return hours ? days + " d " + hours + " h" : days + " d";
  }

  function tick() {
    var now = Date.now();
    var tags = document.querySelectorAll("[data-since]");
    for (var i = 0; i < tags.length; i++) {
      var since = Date.parse(tags[i].getAttribute("data-since"));
      if (!isNaN(since)) { tags[i].textContent = duration((now - since) / 1000); }
    }
  }

  function setTitle(waiting) {
    if (ticketId) {
      document.title = (waiting ? "(" + waiting + ") " : "") + baseTitle;
    } else {
      document.title = baseTitle.replace(/\(\d+ waiting\)/, "(" + waiting + " waiting)");
    }
  }

  function ids(root, selector, attribute) {
    var found = {};
    var nodes = root.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) { found[nodes[i].getAttribute(attribute)] = true; }
    return found;
  }

  function markNew(root, selector, attribute, before) {
    var nodes = root.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) {
      if (!before[nodes[i].getAttribute(attribute)]) { nodes[i].classList.add("is-new"); }
    }
  }

  function scrollTimeline(force) {
    var pane = document.getElementById("timeline-scroll");
    if (!pane) { return; }
    var nearBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 120;
    if (force || nearBottom) { pane.scrollTop = pane.scrollHeight; }
  }

  // Keep the agent's unsent reply, notes and choices (and the caret) across a swap of the work
  // area. Fields are told apart by their form's action and their name: the hand-back and the
  // transfer forms both have a "note".
  function draftKey(field) {
    return (field.form ? field.form.getAttribute("action") : "") + "|" + field.name;
  }

  function saveDrafts(root) {
    var saved = {};
    var fields = root.querySelectorAll("textarea[name], input[type=text][name], select[name]");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      saved[draftKey(field)] = {
        value: field.value, focused: document.activeElement === field,
        start: field.selectionStart, end: field.selectionEnd
      };
    }
    return saved;
  }

  function restoreDrafts(root, saved) {
    var fields = root.querySelectorAll("textarea[name], input[type=text][name], select[name]");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      var draft = saved[draftKey(field)];
      if (!draft) { continue; }
      if (draft.value) { field.value = draft.value; }
      if (draft.focused && !field.disabled) {
        field.focus();
        try { field.setSelectionRange(draft.start, draft.end); } catch (e) { /* not a text field */ }
      }
    }
  }

  // The wrap-up's intent choice counts only with one reason ("the bot misunderstood", named by
  // the reason select's data-wrapup-why): shown only while that reason is chosen.
  function showWrapUpIntents(root) {
    var reasons = root.querySelectorAll("select[data-wrapup-why]");
    for (var i = 0; i < reasons.length; i++) {
      var intent = reasons[i].form && reasons[i].form.querySelector("[data-wrapup-intent]");
      if (intent) { intent.hidden = reasons[i].value !== reasons[i].getAttribute("data-wrapup-why"); }
    }
  }

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.matches && field.matches("select[data-wrapup-why]") && field.form) {
      showWrapUpIntents(field.form);
    }
  });
  showWrapUpIntents(document);

  function swap(fragments) {
    var timelineBefore = null;
    var rowsBefore = ids(document, "tr[data-ticket]", "data-ticket");
    var timeline = document.querySelector("[data-fragment=timeline]");
    if (timeline) { timelineBefore = ids(timeline, "[data-entry]", "data-entry"); }
    Object.keys(fragments).forEach(function (name) {
      var target = document.querySelector("[data-fragment='" + name + "']");
      if (!target) { return; }
      var drafts = saveDrafts(target);
      target.innerHTML = fragments[name];
      restoreDrafts(target, drafts);
      showWrapUpIntents(target);
    });
    markNew(document, "tr[data-ticket]", "data-ticket", rowsBefore);
    if (timeline && timelineBefore) {
      var entriesBefore = Object.keys(timelineBefore).length;
      markNew(timeline, "[data-entry]", "data-entry", timelineBefore);
      scrollTimeline(timeline.querySelectorAll("[data-entry]").length > entriesBefore);
    }
    tick();
  }

  var pending = null;
  var inFlight = false;
  var again = false;

  function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    var url = ticketId ? "/partials/tickets/" + encodeURIComponent(ticketId) : "/partials/inbox";
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data) { return; }
        swap(data.html);
        setTitle(data.waiting);
      })
      .catch(function () { /* the next change or reconnect fetches again */ })
      .then(function () {
        inFlight = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(function () { pending = null; refresh(); }, 120);
  }

  function connect() {
    var status = document.getElementById("live-status");
    if (!window.EventSource || !status) { return; }
    status.hidden = false;
    var label = status.querySelector(".label");
    var wasDown = false;
    var source = new EventSource("/events");
    source.onopen = function () {
      status.className = "live-status on";
      label.textContent = "Live";
      status.title = "New tickets and messages appear by themselves";
      if (wasDown) { wasDown = false; schedule(); }  // catch up on what was missed
    };
    source.onerror = function () {
      status.className = "live-status off";
      label.textContent = "Reconnecting…";
      wasDown = true;
    };
    source.addEventListener("ticket", schedule);
  }

  // Whole rows of the ticket tables open their ticket.
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-ticket]");
    if (!row || event.target.closest("a, button, input, textarea")) { return; }
    if (window.getSelection && String(window.getSelection()) !== "") { return; }
    window.location.href = "/tickets/" + encodeURIComponent(row.getAttribute("data-ticket"));
  });

  // Ctrl+Enter (Cmd+Enter) sends the reply.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) { return; }
    var field = event.target;
    if (field && field.name === "text" && field.form) {
      event.preventDefault();
      if (field.form.requestSubmit) { field.form.requestSubmit(); } else { field.form.submit(); }
    }
  });

  if (body.getAttribute("data-live")) {
    setTitle(document.querySelectorAll(ticketId ? ".queue-pane .since" : "tr.state-waiting").length);
    connect();
    tick();
    setInterval(tick, 10000);
    scrollTimeline(true);
  }
})();
