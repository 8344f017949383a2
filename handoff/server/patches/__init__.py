"""Every change this project makes to Rasa's internals, installed from one place.

Rasa 3.6 has no hook for some of what the assistant needs (a failing custom action) and spends
CPU where it need not (docs/PERFORMANCE.md), so a few Rasa functions are replaced in the Rasa
server process. Each replacement is a :class:`Patch` with a name; :func:`install` puts the
enabled ones in place, once per process, and refuses to when the installed Rasa is not the
version pinned in constraints.txt: a patch is written against one version's internals and checked
against that version's own behaviour by a test (docs/RASA_PATCHES.md, the upgrade checklist).

Switch a patch off with ``HANDOFF_PATCH_<NAME>=off`` (e.g. ``HANDOFF_PATCH_RULE_INDEX=off``); Rasa's
own code then runs. With every patch off, nothing is checked or changed.

Called by both plugins that every configuration of the Rasa server loads: the event broker
(:class:`handoff.server.broker.HandoffEventBroker`, endpoints.yml) and the helpdesk channel
(:class:`handoff.server.helpdesk_channel.HelpdeskInput`, credentials.yml). Either alone installs
everything; the second call changes nothing. Rasa itself is imported only inside the functions:
importing this package does not load TensorFlow.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from handoff.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

CONSTRAINTS = PROJECT_ROOT / "constraints.txt"
SWITCH_PREFIX = "HANDOFF_PATCH_"
OFF = {"off", "0", "false", "no"}


class RasaVersionError(RuntimeError):
    """The installed Rasa is not the version the patches were written and tested against."""


@dataclass(frozen=True)
class Patch:
    """One change to Rasa: what it replaces, and how to put it in place and take it out."""

    name: str
    replaces: str
    install: Callable[[], None]
    uninstall: Callable[[], None]
    installed: Callable[[], bool]

    @property
    def switch(self) -> str:
        return SWITCH_PREFIX + self.name.upper()


def _action_failure(attribute: str) -> Callable[..., object]:
    def call(*args: object, **kwargs: object) -> object:
        from handoff.server.patches import action_failure

        return getattr(action_failure, attribute)(*args, **kwargs)

    return call


def _speedup(attribute: str) -> Callable[[], object]:
    def call() -> object:
        from handoff.server.patches import speedups

        return getattr(speedups, attribute)()

    return call


def _speedup_patch(name: str, replaces: str) -> Patch:
    return Patch(name, replaces, _speedup(f"install_{name}"), _speedup(f"uninstall_{name}"), _speedup(f"installed_{name}"))


#: Every patch, in the order they are installed.
PATCHES: tuple[Patch, ...] = (
    Patch(
        "action_failure",
        "rasa.core.actions.action.RemoteAction.run (wrapped)",
        _action_failure("install"),
        _action_failure("uninstall"),
        _action_failure("installed"),
    ),
    _speedup_patch("action_response_validator", "rasa.core.actions.action.RemoteAction._validate_action_result"),
    _speedup_patch("rule_states", "rasa.core.policies.rule_policy.RulePolicy._rule_key_to_state"),
    _speedup_patch("rule_index", "rasa.core.policies.rule_policy.RulePolicy._get_possible_keys"),
    _speedup_patch("event_classes", "rasa.shared.core.events.Event.resolve_by_type"),
)
BY_NAME = {patch.name: patch for patch in PATCHES}


def enabled(patch: Patch, environ: Mapping[str, str] | None = None) -> bool:
    """False when ``HANDOFF_PATCH_<NAME>`` says off (``off``, ``0``, ``false``, ``no``)."""
    value = (os.environ if environ is None else environ).get(patch.switch, "")
    return value.strip().lower() not in OFF


def pinned_rasa_version(constraints: os.PathLike | str = CONSTRAINTS) -> str:
    """The ``rasa==`` version pinned in constraints.txt."""
    try:
        text = open(constraints, encoding="utf-8").read()
    except OSError as exc:
        raise RasaVersionError(f"cannot read the Rasa pin from {constraints}: {exc}") from None
    found = re.search(r"^rasa==([^\s#;]+)", text, re.MULTILINE | re.IGNORECASE)
    if found is None:
        raise RasaVersionError(f"{constraints} pins no rasa version (a line rasa==X.Y.Z)")
    return found.group(1)


def check_rasa_version(installed: str | None = None, pinned: str | None = None) -> None:
    """Raise :class:`RasaVersionError` unless the installed Rasa is the pinned one."""
    if installed is None:
        import rasa

        installed = rasa.__version__
    pinned = pinned or pinned_rasa_version()
    if installed != pinned:
        switches = " ".join(f"{patch.switch}=off" for patch in PATCHES)
        raise RasaVersionError(
            f"Rasa {installed} is installed, but the handoff patches of Rasa internals were written and "
            f"tested for Rasa {pinned} (constraints.txt). Install rasa=={pinned}, or check each patch "
            f"against the new version (docs/RASA_PATCHES.md) and change the pin, or run without them: {switches}"
        )


def install(on_recorded: Callable[[], None] | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Install every enabled patch (idempotent); the names of those in place.

    Args:
        on_recorded: Called after a failing action's handoff was recorded (the outbox worker's
            ``wake``), see :func:`handoff.server.patches.action_failure.install`.
        environ: Where the switches are read (default ``os.environ``).
    """
    wanted = [patch for patch in PATCHES if enabled(patch, environ)]
    if not wanted:
        return []
    check_rasa_version()
    for patch in wanted:
        if patch.name == "action_failure":
            patch.install(on_recorded=on_recorded)  # type: ignore[call-arg]
        elif not patch.installed():
            patch.install()
    off = [patch.name for patch in PATCHES if patch not in wanted]
    if off:
        logger.info("Rasa patches switched off: %s", ", ".join(off))
    return [patch.name for patch in wanted]


def uninstall() -> None:
    """Put Rasa's own code back (every patch)."""
    for patch in reversed(PATCHES):
        patch.uninstall()


def installed() -> list[str]:
    """The names of the patches in place in this process."""
    return [patch.name for patch in PATCHES if patch.installed()]
