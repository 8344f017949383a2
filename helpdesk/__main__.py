"""``python -m helpdesk``: serve the helpdesk on HELPDESK_HOST (127.0.0.1) : HELPDESK_PORT (5080)."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from handoff.settings import SettingsError, get_settings
from helpdesk.app import create_app


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("HELPDESK_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"helpdesk: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("HELPDESK_HOST") or "127.0.0.1"
    port = settings.helpdesk_port

    def announce(_message: str) -> None:
        logging.getLogger("helpdesk").info(
            "helpdesk inbox on http://%s:%s/ (webhook: POST /webhook; assistant: %s)",
            host,
            port,
            settings.rasa_url,
        )

    # No access log: the pages reload every few seconds; handoff events get their own line.
    web.run_app(create_app(settings), host=host, port=port, access_log=None, print=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
