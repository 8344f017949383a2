"""The web chat's one page. Its behaviour is in static/chat.js, its look in static/chat.css, its
words in both languages in texts.py."""

from __future__ import annotations

from typing import Any

import jinja2

from webchat.config import WebchatConfig
from webchat.texts import DEFAULT_LANGUAGE, TEXTS

SOCKET_IO_CLIENT = "socket.io-4.8.4.min.js"

_PAGE = """<!doctype html>
<html lang="{{ lang }}"{% if chosen %} data-lang="{{ lang }}"{% endif %}>
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ t.documentTitle.format(title=title) }}</title>
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
        <div class="head-title" id="head-title">{{ t.assistant.format(title=title) }}</div>
        <div class="head-status" id="head-status" role="status">{{ t.connecting }}</div>
      </div>
      <button type="button" class="head-button" id="start-over" data-text="startOver">{{ t.startOver }}</button>
    </header>
    <div class="connection" id="connection" role="alert" data-text="connectionLost" hidden>{{ t.connectionLost }}</div>
    <main class="log" id="log" aria-live="polite" aria-label="{{ t.conversation }}">
      <div class="intro" id="intro">
        <p class="intro-title" data-text="introTitle">{{ t.introTitle }}</p>
        <p data-text="introText">{{ t.introText }}</p>
      </div>
    </main>
    <div class="typing" id="typing" hidden aria-hidden="true"><span></span><span></span><span></span></div>
    <div class="actions" id="actions">
      <button type="button" class="ask-person" id="ask-person" data-text="talkToPerson">{{ t.talkToPerson }}</button>
    </div>
    <form class="composer" id="composer" autocomplete="off">
      <label class="visually-hidden" for="message" data-text="yourMessage">{{ t.yourMessage }}</label>
      <input id="message" name="message" type="text" maxlength="2000" placeholder="{{ t.placeholder }}" autofocus>
      <button type="submit" id="send" data-text="send">{{ t.send }}</button>
    </form>
  </div>
</body>
</html>
"""

_environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_template = _environment.from_string(_PAGE)


def page_config(config: WebchatConfig) -> dict[str, Any]:
    """What the page's script needs: where Rasa is, and its words in both languages."""
    return {
        "socketUrl": config.socket_url,
        "socketPath": config.socket_path,
        "title": config.title,
        "texts": TEXTS,
    }


def render_page(config: WebchatConfig, language: str | None = None) -> str:
    """The page in ``language`` when the request chose one (``?lang=``), else in the default
    language, which the script replaces with the browser's."""
    lang = language or DEFAULT_LANGUAGE
    return _template.render(
        title=config.title,
        lang=lang,
        chosen=language is not None,
        t=TEXTS[lang],
        page_config=page_config(config),
        socket_io_client=SOCKET_IO_CLIENT,
    )
