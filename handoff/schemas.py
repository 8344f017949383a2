"""Validation of handoff messages against the JSON Schemas in ``docs/schemas/``.

One schema per event (see docs/HANDOFF_CONTRACT.md). Schemas are read on first use and their
validators cached. Errors are reported as :class:`SchemaValidationError` with a message a person can
act on, e.g. ``agent.message: at text: '' is too short (minimum 1 character)``.

No Rasa imports here: the action server, the Rasa plugins and the helpdesk all use this module.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, relevance

from handoff.settings import PROJECT_ROOT

SCHEMA_DIR: Path = PROJECT_ROOT / "docs" / "schemas"

#: Assistant → helpdesk events.
OUTBOUND_EVENTS: tuple[str, ...] = ("handoff.requested", "conversation.message", "handoff.ended", "follow_up.requested")
#: Helpdesk → assistant events.
INBOUND_EVENTS: tuple[str, ...] = ("agent.joined", "agent.message", "agent.handback", "agent.transferred")

# A message lists at most this many problems; the rest are counted.
_MAX_REPORTED_ERRORS = 5

# RFC 3339 date-time: a full date, a time and a time zone (``Z`` or ``±hh:mm``).
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

_JSON_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}


class SchemaValidationError(ValueError):
    """A message does not match its schema.

    ``str(error)`` says what is wrong in plain words (field path and problem); ``problems`` holds
    one line per problem found.
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) or [message]


def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True  # the "type" keyword reports non-strings
    if not _DATE_TIME.match(instance):
        return False
    # Python 3.10's fromisoformat does not read "Z" or lower-case separators.
    normalised = instance[:10] + "T" + instance[11:]
    if normalised[-1] in "Zz":
        normalised = normalised[:-1] + "+00:00"
    datetime.fromisoformat(normalised)  # raises ValueError on e.g. month 13
    return True


@functools.lru_cache(maxsize=1)
def _format_checker() -> FormatChecker:
    # jsonschema checks "uuid" itself; "date-time" needs an optional dependency, so check it here.
    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    return checker


def schema_path(event: str) -> Path:
    """The file that holds the schema of ``event``."""
    return SCHEMA_DIR / f"{event}.json"


@functools.cache
def _read_schema(event: str) -> dict[str, Any]:
    if event not in OUTBOUND_EVENTS + INBOUND_EVENTS:
        raise KeyError(f"no schema for event {event!r}")
    with schema_path(event).open(encoding="utf-8") as handle:
        return json.load(handle)


def load_schema(event: str) -> dict[str, Any]:
    """A copy of the schema of ``event`` (the file is read once)."""
    return copy.deepcopy(_read_schema(event))


@functools.cache
def _validator(event: str) -> Draft202012Validator:
    schema = _read_schema(event)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker())


def _json_type(instance: object) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "true or false"
    if isinstance(instance, int | float):
        return "a number"
    if isinstance(instance, str):
        return "a string"
    if isinstance(instance, list):
        return "an array"
    if isinstance(instance, dict):
        return "an object"
    return type(instance).__name__


def _short(instance: object, limit: int = 60) -> str:
    text = repr(instance)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _describe(error: ValidationError) -> str:
    """One problem in plain words, without the field path."""
    keyword, expected, instance = error.validator, error.validator_value, error.instance
    if keyword == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_JSON_TYPE_NAMES.get(t, t) for t in types)
        return f"expected {wanted}, got {_json_type(instance)}"
    if keyword == "enum":
        return f"{_short(instance)} is not one of: {', '.join(map(str, expected))}"
    if keyword == "const":
        return f"must be {expected!r}, got {_short(instance)}"
    if keyword == "minLength":
        unit = "character" if expected == 1 else "characters"
        return f"{_short(instance)} is too short (minimum {expected} {unit})"
    if keyword == "maxLength":
        return f"too long: {len(instance)} characters, maximum {expected}"
    if keyword == "format":
        hint = " with a time zone, e.g. 2024-05-01T12:00:00Z" if expected == "date-time" else ""
        return f"{_short(instance)} is not a valid {expected}{hint}"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def _problems(event: str, body: dict[str, Any]) -> list[str]:
    errors = sorted(_validator(event).iter_errors(body), key=relevance, reverse=True)
    problems: list[str] = []
    for error in errors:
        path = _path(error)
        problem = f"at {path}: {_describe(error)}" if path else _describe(error)
        if problem not in problems:
            problems.append(problem)
    return problems


def _validate(body: object, known: tuple[str, ...], direction: str) -> dict[str, Any]:
    expected = ", ".join(known)
    if not isinstance(body, dict):
        raise SchemaValidationError(f"the body must be a JSON object, got {_json_type(body)}")
    event = body.get("event")
    if event is None:
        raise SchemaValidationError(f"'event' is a required property (one of: {expected})")
    if not isinstance(event, str):
        raise SchemaValidationError(f"at event: expected a string, got {_json_type(event)}")
    if event not in known:
        raise SchemaValidationError(
            f"unknown event {_short(event)}; {direction} events are: {expected}"
        )
    problems = _problems(event, body)
    if problems:
        shown = problems[:_MAX_REPORTED_ERRORS]
        message = f"{event}: " + "; ".join(shown)
        if len(problems) > len(shown):
            message += f" (and {len(problems) - len(shown)} more problems)"
        raise SchemaValidationError(message, [f"{event}: {p}" for p in problems])
    return body


def validate_inbound(body: object) -> dict[str, Any]:
    """Check a helpdesk → assistant message; return it, or raise :class:`SchemaValidationError`."""
    return _validate(body, INBOUND_EVENTS, "helpdesk → assistant")


def validate_outbound(body: object) -> dict[str, Any]:
    """Check an assistant → helpdesk message; return it, or raise :class:`SchemaValidationError`."""
    return _validate(body, OUTBOUND_EVENTS, "assistant → helpdesk")
