"""Which addresses a service may listen on.

Every service binds to 127.0.0.1 unless told otherwise. In development (``HANDOFF_ENV`` unset,
``development``, ``dev`` or ``test``) the secrets are development defaults and Rasa's HTTP API has
no token, so an address other machines can reach is refused at start-up; outside development the
secrets and tokens are required (handoff/settings.py, handoff/action_server.py, scripts/run.sh)
and any address is allowed.

Shell scripts check an address with ``python -m handoff.exposure RASA_HOST "$RASA_HOST"`` (exit
status 2 and the reason on stderr when refused).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Mapping

from handoff.settings import SettingsError

DEFAULT_HOST = "127.0.0.1"
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "test"})

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


def main(argv: list[str] | None = None) -> int:
    """``python -m handoff.exposure VARIABLE [HOST]``: exit 2 with the reason when refused."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m handoff.exposure VARIABLE [HOST]", file=sys.stderr)
        return 64
    variable = args[0]
    host = (args[1] if len(args) == 2 else os.environ.get(variable, "")).strip() or DEFAULT_HOST
    try:
        check_bind(variable, host)
    except ExposureError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
