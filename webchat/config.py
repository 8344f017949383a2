"""The web chat's settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from handoff.settings import SettingsError

DEFAULT_PORT = 5090


@dataclass(frozen=True)
class WebchatConfig:
    """Where the page is served and where the browser finds the assistant."""

    host: str
    port: int
    # Where the customer's browser opens the socket.io connection: the Rasa server.
    socket_url: str
    socket_path: str
    title: str

    @property
    def socket_origins(self) -> list[str]:
        """The origins the page may connect to (for its Content-Security-Policy)."""
        parts = urlsplit(self.socket_url)
        websocket = "wss" if parts.scheme == "https" else "ws"
        return [f"{parts.scheme}://{parts.netloc}", f"{websocket}://{parts.netloc}"]


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or ""
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name} must be a port number, got {raw!r}")
    return int(raw)


def load_config(environ: Mapping[str, str] | None = None) -> WebchatConfig:
    """Read WEBCHAT_HOST, WEBCHAT_PORT, RASA_URL / RASA_PORT and WEBCHAT_SOCKET_URL.

    ``WEBCHAT_SOCKET_URL`` is the Rasa server as the customer's browser reaches it; it defaults
    to ``RASA_URL`` (itself ``http://127.0.0.1:$RASA_PORT``), which is right on one machine.
    """
    environ = os.environ if environ is None else environ
    rasa_url = environ.get("RASA_URL") or f"http://127.0.0.1:{_port(environ, 'RASA_PORT', 5005)}"
    socket_url = (environ.get("WEBCHAT_SOCKET_URL") or rasa_url).rstrip("/")
    parts = urlsplit(socket_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"the web chat needs an http(s) URL of the Rasa server, got {socket_url!r} "
            "(set RASA_URL or WEBCHAT_SOCKET_URL)"
        )
    socket_path = environ.get("WEBCHAT_SOCKET_PATH") or "/socket.io"
    if not socket_path.startswith("/"):
        raise SettingsError(f"WEBCHAT_SOCKET_PATH must start with '/', got {socket_path!r}")
    return WebchatConfig(
        host=environ.get("WEBCHAT_HOST") or "127.0.0.1",
        port=_port(environ, "WEBCHAT_PORT", DEFAULT_PORT),
        socket_url=socket_url,
        socket_path=socket_path,
        title=environ.get("WEBCHAT_TITLE") or "Northwind Shop",
    )
