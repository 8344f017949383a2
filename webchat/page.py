"""The web chat's one page. Its behaviour is in static/chat.js, its look in static/chat.css."""

from __future__ import annotations

from typing import Any

import jinja2

from webchat.config import WebchatConfig

SOCKET_IO_CLIENT = "socket.io-4.8.4.min.js"

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }} · Customer service chat</title>
  <link rel="stylesheet" href="/static/chat.css">
  <script type="application/json" id="webchat-config">{{ page_config | tojson }}</script>
  <script src="/static/{{ socket_io_client }}" defer></script>
  <script src="/static/chat.js" defer></script>
</head>
<body>
  <div class="chat" id="chat" data-mode="bot">
    <header class="chat-head">
      <div class="head-avatar" id="head-avatar" aria-hidden="true">N</div>
      <div class="head-text">
        <div class="head-title" id="head-title">{{ title }} assistant</div>
        <div class="head-status" id="head-status" role="status">Connecting…</div>
      </div>
    </header>
    <div class="connection" id="connection" role="alert" hidden>Connection lost. Reconnecting…</div>
    <main class="log" id="log" aria-live="polite" aria-label="Conversation">
      <div class="intro" id="intro">
        <p class="intro-title">Hi! How can we help?</p>
        <p>Ask about your order, delivery, returns, payment or prices. A colleague from customer
        service can take over at any time: just ask for a person.</p>
      </div>
    </main>
    <div class="typing" id="typing" hidden aria-hidden="true"><span></span><span></span><span></span></div>
    <form class="composer" id="composer" autocomplete="off">
      <label class="visually-hidden" for="message">Your message</label>
      <input id="message" name="message" type="text" maxlength="2000" placeholder="Type your message…" autofocus>
      <button type="submit" id="send">Send</button>
    </form>
  </div>
</body>
</html>
"""

_environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_template = _environment.from_string(_PAGE)


def page_config(config: WebchatConfig, notices: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page's script needs: where Rasa is, and how to recognise handoff notices."""
    return {
        "socketUrl": config.socket_url,
        "socketPath": config.socket_path,
        "title": config.title,
        "notices": notices,
    }


def render_page(config: WebchatConfig, notices: list[dict[str, Any]]) -> str:
    return _template.render(
        title=config.title,
        page_config=page_config(config, notices),
        socket_io_client=SOCKET_IO_CLIENT,
    )
