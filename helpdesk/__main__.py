"""``python -m helpdesk``: serve the agent console on HELPDESK_HOST (127.0.0.1) : HELPDESK_PORT (5080)."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from handoff.exposure import bind_host
from handoff.settings import SettingsError, get_settings
from helpdesk.app import create_app
from helpdesk.auth import development_banner, load_agents


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("HELPDESK_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        settings = get_settings()
        agents = load_agents(settings)
        host = bind_host("HELPDESK_HOST")  # loopback unless told otherwise; refused off it in development
    except SettingsError as exc:
        print(f"helpdesk: {exc}", file=sys.stderr)
        return 2
    banner = development_banner(agents)
    if banner:
        print(banner, file=sys.stderr, flush=True)
    port = settings.helpdesk_port

    def announce(_message: str) -> None:
        logging.getLogger("helpdesk").info(
            "agent console on http://%s:%s/ for %d agent(s) (webhook: POST /webhook; assistant: %s)",
            host,
            port,
            len(agents),
            settings.rasa_url,
        )

    # No access log: every open console page polls nothing but holds an event stream; handoff
    # events and agent actions get their own log lines.
    web.run_app(
        create_app(settings, agents=agents),
        host=host,
        port=port,
        access_log=None,
        print=announce,
        shutdown_timeout=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
