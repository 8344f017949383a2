"""One typed settings object, read once from the environment.

Safe local defaults; a default secret is allowed only in development and always warned about.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT_SECRET = "development-only-insecure-secret"


class SettingsError(RuntimeError):
    """The environment holds a value the project cannot run with."""


def _number(name: str, default: Any, kind: type, what: str) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from exc


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number")


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def _positive(name: str, default: float) -> float:
    value = _float(name, default)
    if value <= 0:
        raise SettingsError(f"{name} must be more than 0, got {value:g}")
    return value


def _sqlite_url(filename: str) -> str:
    var_dir = Path(os.environ.get("HANDOFF_VAR_DIR") or PROJECT_ROOT / "var")
    var_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{var_dir / filename}"


@dataclass(frozen=True)
class Settings:
    """Everything the handoff loop is configured with."""

    environment: str
    secret: str
    secret_is_default: bool
    rasa_port: int
    actions_port: int
    helpdesk_port: int
    helpdesk_webhook_url: str
    rasa_url: str
    database_url: str
    helpdesk_database_url: str
    # How long the handoff action waits for the helpdesk's first answer before it tells the
    # customer and leaves delivery to the outbox worker (keeps the conversation lock short).
    first_delivery_wait: float
    delivery_timeout: float
    signature_tolerance: int
    max_body_bytes: int
    outbox_poll_interval: float
    outbox_max_attempts: int
    outbox_expiry_seconds: int
    # The longest wait between two attempts of one delivery (exponential backoff stops growing
    # here), so a recovered helpdesk gets everything queued within about this long.
    retry_max_delay: float
    # No agent joined within this many seconds: the bot takes the conversation back, apologises
    # and offers a callback or an email ticket (durable: a task in the handoff database).
    no_agent_timeout: float
    # While nobody has joined, the customer hears how it goes after this many seconds (and again
    # each time it passes).
    wait_update_after: float
    # After a no-agent timeout, how long the bot waits for a callback number or email address
    # before telling the helpdesk the handoff ended without one.
    follow_up_wait: float
    # How often the Rasa server looks for due tasks.
    task_poll_interval: float
    # A customer's message on the Rasa server (handoff/server/limits.py): the body of a channel webhook
    # (REST, ...) and a socket.io packet in bytes, and the text in characters. NLU time grows with
    # the text: a 100 kB message would hold the server for seconds.
    max_message_bytes: int = 16 * 1024
    max_message_chars: int = 5000
    # How long the reply to a customer message id is kept (handoff/idempotency.py): a message sent
    # again with the same id within this time is answered with that reply, not handled twice.
    message_id_ttl: int = 24 * 3600

    @property
    def is_development(self) -> bool:
        return self.environment in {"development", "dev", "test"}


def load_settings() -> Settings:
    """Read the environment into a :class:`Settings`; raise :class:`SettingsError` on bad values."""
    environment = (os.environ.get("HANDOFF_ENV") or "development").strip().lower()
    secret = os.environ.get("HELPDESK_SECRET") or ""
    secret_is_default = not secret or secret == DEVELOPMENT_SECRET
    if secret_is_default:
        if environment not in {"development", "dev", "test"}:
            raise SettingsError(
                "HELPDESK_SECRET is not set (or is the development default) while "
                f"HANDOFF_ENV={environment!r}. Set a long random HELPDESK_SECRET, e.g. "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        secret = DEVELOPMENT_SECRET

    # A too short secret for signed customer identities stops the start, like HELPDESK_SECRET.
    from handoff.identity import IdentitySecretError, identity_secret

    try:
        identity_secret()
    except IdentitySecretError as exc:
        raise SettingsError(str(exc)) from None

    rasa_port = _int("RASA_PORT", 5005)
    actions_port = _int("ACTIONS_PORT", 5055)
    helpdesk_port = _int("HELPDESK_PORT", 5080)
    webhook_url = os.environ.get("HELPDESK_WEBHOOK_URL") or f"http://127.0.0.1:{helpdesk_port}/webhook"
    rasa_url = (os.environ.get("RASA_URL") or f"http://127.0.0.1:{rasa_port}").rstrip("/")

    return Settings(
        environment=environment,
        secret=secret,
        secret_is_default=secret_is_default,
        rasa_port=rasa_port,
        actions_port=actions_port,
        helpdesk_port=helpdesk_port,
        helpdesk_webhook_url=webhook_url,
        rasa_url=rasa_url,
        database_url=os.environ.get("HANDOFF_DATABASE_URL") or _sqlite_url("handoff.db"),
        helpdesk_database_url=os.environ.get("HELPDESK_DATABASE_URL") or _sqlite_url("helpdesk.db"),
        first_delivery_wait=_float("HANDOFF_FIRST_DELIVERY_WAIT", 3.0),
        delivery_timeout=_float("HANDOFF_DELIVERY_TIMEOUT", 10.0),
        signature_tolerance=_int("HANDOFF_SIGNATURE_TOLERANCE", 300),
        max_body_bytes=_int("HANDOFF_MAX_BODY_BYTES", 256 * 1024),
        outbox_poll_interval=_float("HANDOFF_OUTBOX_POLL_INTERVAL", 2.0),
        outbox_max_attempts=_int("HANDOFF_OUTBOX_MAX_ATTEMPTS", 50),
        outbox_expiry_seconds=_int("HANDOFF_OUTBOX_EXPIRY_SECONDS", 24 * 3600),
        retry_max_delay=_positive("HANDOFF_RETRY_MAX_DELAY", 60.0),
        no_agent_timeout=_positive("HANDOFF_NO_AGENT_TIMEOUT", 300.0),
        wait_update_after=_positive("HANDOFF_WAIT_UPDATE_AFTER", 120.0),
        follow_up_wait=_positive("HANDOFF_FOLLOW_UP_WAIT", 600.0),
        task_poll_interval=_positive("HANDOFF_TASK_POLL_INTERVAL", 1.0),
        max_message_bytes=_int("HANDOFF_MAX_MESSAGE_BYTES", 16 * 1024),
        max_message_chars=_int("HANDOFF_MAX_MESSAGE_CHARS", 5000),
        message_id_ttl=int(_positive("HANDOFF_MESSAGE_ID_TTL", 24 * 3600)),
    )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import time)."""
    settings = load_settings()
    if settings.secret_is_default:
        logger.warning(
            "!!! HELPDESK_SECRET is not set: signing with the public development secret. "
            "Anyone can forge helpdesk events. Set HELPDESK_SECRET before exposing this service. !!!"
        )
    return settings
