"""``python -m handoff.server.action_server``: rasa_sdk's action server, closed to everyone but Rasa.

``rasa run actions`` listens on 0.0.0.0 and runs any action for anyone who posts a made-up tracker
to ``/webhook`` (one request creates a handoff ticket), and inflates a deflate-compressed body with
no limit. This entry point serves the same Sanic app (``rasa_sdk.endpoint.create_app``) with:

- the address ``ACTIONS_HOST`` (default 127.0.0.1; refused off loopback in development,
  handoff/exposure.py) and the port ``ACTIONS_PORT`` (5055);
- ``Authorization: Bearer <ACTIONS_TOKEN>`` on every route but ``/health`` (401 otherwise), checked
  after routing and before Sanic reads the body, so a refused request runs nothing;
- no ``Content-Encoding`` but ``identity`` (415: Rasa sends plain JSON unless
  ``COMPRESS_ACTION_SERVER_REQUEST`` is set, which this server refuses);
- at most ``ACTIONS_MAX_BODY_BYTES`` (4 MiB) of body (413, counted while it is read). A tracker
  carries every event of the conversation, so the limit is well above the helpdesk webhook's.

The token: ``ACTIONS_TOKEN``; in development, when it is unset, it is derived from
``HELPDESK_SECRET`` (or its development default) so that ``make run`` works with no configuration.
Outside development the server refuses to start without it. The Rasa server sends it from
``endpoints.yml`` (``headers: Authorization: Bearer ${ACTIONS_TOKEN}``), so every script that
starts Rasa exports the same value: ``python -m handoff.server.action_server --print-token`` prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.exposure import ExposureError, bind_host, is_development
from handoff.settings import DEVELOPMENT_SECRET, SettingsError, load_settings

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5055
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Fixed label of the development token: HMAC-SHA256(HELPDESK_SECRET, label).
TOKEN_LABEL = b"northwind-handoff/action-server-token/v1"
#: Routes anyone may call (a load balancer's or a test's readiness check).
OPEN_PATHS = frozenset({"/health"})
MIN_TOKEN_LENGTH = 16


class Refused(SanicException):
    """A request the action server turns away before it reads the body."""

    def __init__(self, message: str, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.refusal_headers = dict(headers or {})


def action_token(environ: Mapping[str, str] | None = None) -> str:
    """The shared secret Rasa sends the action server; :class:`SettingsError` when there is none."""
    environ = os.environ if environ is None else environ
    token = (environ.get("ACTIONS_TOKEN") or "").strip()
    if token:
        if not is_development(environ) and len(token) < MIN_TOKEN_LENGTH:
            raise SettingsError(
                f"ACTIONS_TOKEN is {len(token)} characters long; outside development it needs at least "
                f"{MIN_TOKEN_LENGTH} (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)."
            )
        return token
    if not is_development(environ):
        environment = (environ.get("HANDOFF_ENV") or "").strip().lower()
        raise SettingsError(
            f"ACTIONS_TOKEN is not set while HANDOFF_ENV={environment!r}: anyone reaching the action "
            "server could run the handoff actions. Set ACTIONS_TOKEN to a long random value, the same "
            "for the action server and every Rasa server (`python -c 'import secrets; "
            "print(secrets.token_hex(32))'`)."
        )
    secret = environ.get("HELPDESK_SECRET") or DEVELOPMENT_SECRET
    return hmac.new(secret.encode(), TOKEN_LABEL, hashlib.sha256).hexdigest()


def max_body_bytes(environ: Mapping[str, str] | None = None) -> int:
    """``ACTIONS_MAX_BODY_BYTES``, the largest request body taken (default 4 MiB)."""
    environ = os.environ if environ is None else environ
    raw = (environ.get("ACTIONS_MAX_BODY_BYTES") or "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise SettingsError(f"ACTIONS_MAX_BODY_BYTES must be a whole number above 0, got {raw!r}")
    return int(raw)


def bearer_matches(header: str | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def content_encodings(request: Request) -> list[str]:
    values = request.headers.getall("content-encoding", [])
    return [part.strip().lower() for value in values for part in value.split(",") if part.strip()]


def protect(app: Sanic, token: str, limit: int) -> Sanic:
    """Add the token, encoding and size checks to rasa_sdk's ``app`` (before it is started)."""
    if not token:
        raise ValueError("an empty token would let anyone in")

    @app.signal("http.routing.after")
    async def guard(request: Request, route: Any, kwargs: Any, handler: Any) -> None:
        # After routing, before Sanic reads the body (handle_request): a refusal here runs no
        # handler and parses nothing. Sanic drains at most `limit` bytes of a refused body, and
        # answers 413 itself once more than `limit` arrive (chunked bodies too).
        stream = request.stream
        if stream is not None and hasattr(stream, "request_max_size"):  # HTTP/1 (not ASGI)
            stream.request_max_size = min(stream.request_max_size, limit)
        if request.path in OPEN_PATHS:
            return
        if not bearer_matches(request.headers.get("authorization"), token):
            logger.warning("refused %s %s from %s: no valid token", request.method, request.path, request.ip)
            raise Refused("a valid Authorization: Bearer token is required", 401, {"WWW-Authenticate": "Bearer"})
        encodings = [e for e in content_encodings(request) if e != "identity"]
        if encodings:
            logger.warning("refused %s %s: Content-Encoding %s", request.method, request.path, ",".join(encodings))
            raise Refused("compressed request bodies are not accepted; send plain JSON", 415)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            logger.warning("refused %s %s: %s bytes (limit %d)", request.method, request.path, declared, limit)
            raise Refused(f"the request body is over {limit} bytes", 413)

    @app.exception(SanicException)
    async def refused(request: Request, exception: SanicException) -> HTTPResponse:
        # rasa_sdk's own handler answers every exception with 500 and echoes the body; Sanic's
        # (401, 404, 413, 415, ...) keep their status and say nothing about the request.
        headers = getattr(exception, "refusal_headers", None) or {}
        status = getattr(exception, "status_code", 500) or 500
        return response.json({"error": str(exception)}, status=status, headers=headers)

    return app


def create_app(
    actions: str = "actions", token: str | None = None, limit: int | None = None
) -> Sanic:
    """rasa_sdk's action server app for the ``actions`` package, protected by :func:`protect`."""
    from rasa_sdk.endpoint import create_app as create_sdk_app

    # No CORS: only the Rasa server calls the action server, never a browser.
    app = create_sdk_app(actions, cors_origins=None)
    return protect(app, token if token is not None else action_token(), limit or max_body_bytes())


def _port(environ: Mapping[str, str]) -> int:
    raw = (environ.get("ACTIONS_PORT") or "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"ACTIONS_PORT must be a port number, got {raw!r}")
    return int(raw)


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handoff.server.action_server",
        description="The action server for the actions package, on loopback and behind ACTIONS_TOKEN.",
    )
    parser.add_argument("--actions", default="actions", help="the package of actions (default: actions)")
    parser.add_argument("--port", type=int, help="the port (default: ACTIONS_PORT or 5055)")
    parser.add_argument(
        "--print-token", action="store_true", help="print the token Rasa must send, and exit"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _argument_parser().parse_args(argv)
    environ = os.environ
    try:
        if not args.print_token:
            load_settings()  # the same start-up check as actions/__init__.py, said first
        token = action_token(environ)
        if args.print_token:
            print(token)
            return 0
        if (environ.get("COMPRESS_ACTION_SERVER_REQUEST") or "").strip().lower() in {"1", "true", "yes"}:
            raise SettingsError(
                "COMPRESS_ACTION_SERVER_REQUEST is set: Rasa would send deflate-compressed bodies, which "
                "this action server refuses (a small compressed body can inflate a thousandfold). Unset it."
            )
        host = bind_host("ACTIONS_HOST", environ)
        port = args.port or _port(environ)
        limit = max_body_bytes(environ)
    except (SettingsError, ExposureError) as exc:
        print(f"action server: {exc}", file=sys.stderr)
        return 2

    from rasa_sdk import utils
    from rasa_sdk.plugin import plugin_manager

    utils.configure_colored_logging(os.environ.get("LOG_LEVEL") or "INFO")
    utils.update_sanic_log_level()
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    # Importing the actions package runs its start-up check (actions/__init__.py), which exits
    # with a plain message when the settings are unusable.
    app = create_app(args.actions, token=token, limit=limit)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("action server on http://%s:%s (token required; body limit %d bytes)", host, port, limit)
    app.run(host, port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
