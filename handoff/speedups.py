"""Cheaper checks of the action server's answers in the Rasa server (same result, less CPU).

Rasa 3.6 checks every custom action's answer with ``jsonschema.validate(result, schema)``, which
first checks the *schema itself* against its meta-schema on every call. The assistant runs a
custom action on every customer message (``action_assess_turn``, a custom slot mapping), so that
repeated meta-check was the largest single cost of a turn (``make bench``: about a third of the
Rasa server's CPU per message). :func:`install` makes Rasa use one validator built once for the
same schema; valid answers pass and invalid ones raise the same ``ValidationError`` with the same
message as before.

Installed by :class:`handoff.broker.HandoffEventBroker`, which every Rasa server process loads.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
from rasa.core.actions.action import RemoteAction

_ORIGINAL = RemoteAction._validate_action_result


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(result))
    except Exception:
        return _ORIGINAL(self, result)  # anything unexpected: Rasa's own check decides
    if error is None:
        return True
    return _ORIGINAL(self, result)  # invalid: raise exactly as Rasa does


def install() -> None:
    """Use the cached validator (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result


def uninstall() -> None:
    RemoteAction._validate_action_result = _ORIGINAL
