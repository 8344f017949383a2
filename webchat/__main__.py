"""``python -m webchat``: serve the customer web chat on WEBCHAT_HOST (127.0.0.1) : WEBCHAT_PORT (5090)."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from handoff.exposure import check_bind
from handoff.settings import SettingsError
from webchat.app import create_app
from webchat.config import load_config


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("WEBCHAT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        config = load_config()
        check_bind("WEBCHAT_HOST", config.host)  # refused off loopback in development
    except SettingsError as exc:
        print(f"webchat: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)

    def announce(_message: str) -> None:
        logging.getLogger("webchat").info(
            "customer web chat on http://%s:%s/ (assistant: %s%s)",
            config.host,
            config.port,
            config.socket_url,
            config.socket_path,
        )

    web.run_app(
        app, host=config.host, port=config.port, access_log=None, print=announce, shutdown_timeout=2
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
