"""How the page recognises the assistant's handoff notices among the messages it receives.

Rasa's socketio channel sends every message, the bot's and the agent's alike, as ``bot_uttered``
with its text only. The page tells them apart by the handoff's own notices, which it learns here
from the domain's responses (every language variant): "putting you through" starts a handoff,
"<name> has joined" names the agent, and "you're back with the virtual assistant" ends it. While
a handoff is on, the bot is paused, so every other message is the agent's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from handoff.settings import PROJECT_ROOT

logger = logging.getLogger("webchat")

#: The domain responses behind each kind of notice.
NOTICE_RESPONSES: dict[str, tuple[str, ...]] = {
    "handoff": ("utter_handoff_started", "utter_handoff_delayed"),
    "wait": ("utter_handoff_wait_minutes", "utter_handoff_wait_short"),
    "joined": ("utter_handoff_agent_joined",),
    "back": ("utter_handoff_back",),
}

#: What the helpdesk channel says when the joined response cannot be generated
#: (handoff/server/helpdesk_channel.py).
JOINED_FALLBACK = "{agent_name} has joined the conversation."

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_JS_SPECIAL = re.compile(r"[\\^$.*+?()[\]{}|/]")


def _js_escape(text: str) -> str:
    """Escape ``text`` for a JavaScript regular expression (no ``u`` flag needed)."""
    return _JS_SPECIAL.sub(lambda match: "\\" + match.group(0), text)


def _literal(text: str) -> str:
    """``text`` as a pattern in which any run of spaces matches any run of spaces."""
    return r"\s+".join(_js_escape(part) for part in re.split(r"\s+", text))


def text_pattern(text: str) -> dict[str, Any]:
    """A JavaScript pattern matching ``text`` with its ``{placeholders}`` filled in.

    Returns ``{"pattern": "^...$", "agent_group": n}`` where ``n`` is the capture group holding
    ``{agent_name}`` (0 when the text has none).
    """
    text = text.strip()
    pieces: list[str] = []
    agent_group = 0
    groups = 0
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        pieces.append(_literal(text[position : match.start()]))
        groups += 1
        if match.group(1) == "agent_name":
            agent_group = groups
            pieces.append("(.+)")
        else:
            pieces.append("(.+?)")
        position = match.end()
    pieces.append(_literal(text[position:]))
    # Rasa trims what it sends; spaces may differ.
    return {"pattern": r"^\s*" + "".join(pieces) + r"\s*$", "agent_group": agent_group}


def _domain_files(root: Path) -> list[Path]:
    folder = root / "domain"
    if folder.is_dir():
        return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml"))
    return [path for path in (root / "domain.yml", root / "domain.yaml") if path.exists()]


def _responses(root: Path) -> dict[str, list[dict[str, Any]]]:
    responses: dict[str, list[dict[str, Any]]] = {}
    for path in _domain_files(root):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variants in (data.get("responses") or {}).items():
            responses.setdefault(name, []).extend(v for v in variants or [] if isinstance(v, dict))
    return responses


def _trigger_responses(root: Path) -> list[str]:
    """Responses handoff_rules.yml says instead of utter_handoff_started."""
    path = root / "handoff_rules.yml"
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    triggers = data.get("triggers") or {}
    return [t["response"] for t in triggers.values() if isinstance(t, dict) and t.get("response")]


def _texts(responses: dict[str, list[dict[str, Any]]], names: Iterable[str]) -> list[str]:
    texts: list[str] = []
    for name in names:
        for variant in responses.get(name, []):
            text = variant.get("text")
            if isinstance(text, str) and text.strip() and text not in texts:
                texts.append(text)
    return texts


def load_notices(root: Path = PROJECT_ROOT) -> list[dict[str, Any]]:
    """Every handoff notice as ``{"kind", "pattern", "agent_group"}``, for the page."""
    try:
        responses = _responses(root)
        extra_handoff = _trigger_responses(root)
    except (OSError, yaml.YAMLError) as exc:
        logger.warning("could not read the domain's handoff notices (%s): agent messages will "
                       "not be told apart from the bot's", exc)
        return []
    notices: list[dict[str, Any]] = []
    for kind, names in NOTICE_RESPONSES.items():
        names = (*names, *extra_handoff) if kind == "handoff" else names
        texts = _texts(responses, names)
        if kind == "joined":
            texts.append(JOINED_FALLBACK)
        if not texts:
            logger.warning("the domain has no %s notice (%s)", kind, ", ".join(names))
        notices.extend({"kind": kind, **text_pattern(text)} for text in texts)
    return notices
