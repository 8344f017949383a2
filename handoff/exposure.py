"""Which addresses a service may listen on.

Every service binds to 127.0.0.1 unless told otherwise. In development (``HANDOFF_ENV`` unset,
``development``, ``dev`` or ``test``) the secrets are development defaults and Rasa's HTTP API has
no token, so an address other machines can reach is refused at start-up; outside development the
secrets and tokens are required (handoff/settings.py, handoff/server/action_server.py, scripts/run.sh)
and any address is allowed.

It also gives the Rasa server's CORS allow-list (:func:`cors_origins`). Shell scripts check
addresses with ``python -m handoff.exposure RASA_HOST ACTIONS_HOST`` (the values from the
environment; exit status 2 and the reason on stderr when refused) and get the origins with
``python -m handoff.exposure --cors-origins``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from collections.abc import Mapping

from handoff.settings import SettingsError

DEFAULT_HOST = "127.0.0.1"
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "test"})
DEFAULT_WEBCHAT_PORT = 5090
#: A browser origin: scheme://host[:port], nothing more.
ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?/?")

#: What each address variable binds, for the refusal message.
SERVICES = {
    "RASA_HOST": "the Rasa server (its HTTP API reads and changes every conversation)",
    "ACTIONS_HOST": "the action server (it runs the handoff actions)",
    "HELPDESK_HOST": "the agent console (the development agent's password is printed at start-up)",
    "WEBCHAT_HOST": "the customer web chat",
}


class ExposureError(SettingsError):
    """A service would listen on an address other machines reach while in development."""


def environment(environ: Mapping[str, str] | None = None) -> str:
    """``HANDOFF_ENV`` as the settings read it (``development`` when unset)."""
    environ = os.environ if environ is None else environ
    return (environ.get("HANDOFF_ENV") or "development").strip().lower()


def is_development(environ: Mapping[str, str] | None = None) -> bool:
    return environment(environ) in DEVELOPMENT_ENVIRONMENTS


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or a name) is reachable from this machine only.

    A name counts only when every address it resolves to is a loopback address; a name that does
    not resolve, and the wildcard addresses (``0.0.0.0``, ``::``, empty), do not.
    """
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    if host.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def bind_host(variable: str, environ: Mapping[str, str] | None = None) -> str:
    """The address in ``variable`` (default 127.0.0.1), checked with :func:`check_bind`."""
    environ = os.environ if environ is None else environ
    host = (environ.get(variable) or "").strip() or DEFAULT_HOST
    check_bind(variable, host, environ)
    return host


def check_bind(variable: str, host: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ExposureError` when ``host`` is not loopback and the environment is development."""
    if not is_development(environ) or is_loopback(host):
        return
    service = SERVICES.get(variable, "this service")
    raise ExposureError(
        f"{variable}={host} exposes {service} to every machine that can reach this one, while "
        f"HANDOFF_ENV={environment(environ)} allows development secrets and an HTTP API with no token. "
        f"Leave {variable} unset (127.0.0.1) for local use, or set HANDOFF_ENV=production and the "
        "secrets (HELPDESK_SECRET, RASA_AUTH_TOKEN, ACTIONS_TOKEN, HELPDESK_AGENTS); see docs/SECURITY.md."
    )


def cors_origins(environ: Mapping[str, str] | None = None) -> list[str]:
    """The origins whose pages may call the Rasa server from a browser (its ``--cors``).

    ``RASA_CORS_ORIGINS`` (separated by spaces or commas), by default the web chat's own origins
    ``http://127.0.0.1:$WEBCHAT_PORT`` and ``http://localhost:$WEBCHAT_PORT``. ``*`` and anything
    but a plain ``scheme://host[:port]`` origin is refused with :class:`SettingsError`: Rasa's CORS
    echoes any matching origin, and its HTTP API answers with every conversation.
    """
    environ = os.environ if environ is None else environ
    raw = (environ.get("RASA_CORS_ORIGINS") or "").replace(",", " ").split()
    if not raw:
        port = (environ.get("WEBCHAT_PORT") or "").strip() or str(DEFAULT_WEBCHAT_PORT)
        return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    origins: list[str] = []
    for origin in raw:
        if origin == "*":
            raise SettingsError(
                "RASA_CORS_ORIGINS=* would let every web page in a customer's or agent's browser call "
                "the Rasa server; list the pages' origins instead, e.g. "
                "RASA_CORS_ORIGINS='https://shop.example.com https://chat.example.com'."
            )
        if not ORIGIN.fullmatch(origin):
            raise SettingsError(
                f"RASA_CORS_ORIGINS: {origin!r} is not an origin; write scheme://host[:port] with "
                "no path and no wildcard, e.g. https://chat.example.com."
            )
        origins.append(origin.rstrip("/"))
    return origins


def main(argv: list[str] | None = None) -> int:
    """``python -m handoff.exposure [--cors-origins] VARIABLE...``.

    Checks the address in each variable (from the environment); with ``--cors-origins`` prints
    the Rasa server's CORS origins on one line. Exit status 2 with the reason on stderr when
    something is refused.
    """
    args = sys.argv[1:] if argv is None else argv
    print_origins = "--cors-origins" in args
    variables = [a for a in args if a != "--cors-origins"]
    try:
        for variable in variables:
            bind_host(variable)
        if print_origins:
            print(" ".join(cors_origins()))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
