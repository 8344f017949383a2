"""Erase a customer's conversations from every store, or those past the retention period.

``python -m handoff.tools.privacy_cli forget --customer ...`` (``make forget``) and
``python -m handoff.tools.privacy_cli expire`` (``make retention``). The erasure itself lives in
:mod:`handoff.privacy`; this module finds the stores (the tracker store named in endpoints.yml,
the handoff database, the embedded helpdesk's database) and prints what was erased.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from handoff import databases
from handoff.databases import default_endpoints
from handoff.privacy import (
    DAY,
    RETENTION_ENV,
    Customer,
    Erasure,
    Stores,
    TrackerEvents,
    expire,
    forget,
    normalise_customer_id,
    normalise_email,
    normalise_phone,
    retention_days,
)
from handoff.settings import SettingsError, load_settings

# -- the command line -------------------------------------------------------------------------------------


def _sqlite_file(url: sa.engine.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _missing(url: sa.engine.URL) -> bool:
    """A SQLite file that does not exist: nothing is stored there (and it is not created)."""
    path = _sqlite_file(url)
    return path is not None and not path.exists()


def tracker_store_url(endpoints: Path) -> sa.engine.URL:
    """The database URL of the SQL tracker store configured in ``endpoints``
    (:func:`handoff.databases.tracker_store_url`); :class:`SettingsError` when there is none."""
    url = databases.tracker_store_url(endpoints)
    if url is None:
        raise SettingsError(f"{endpoints} configures no SQL tracker store: conversations are not in a database")
    return sa.engine.make_url(url)


def _shown(url: sa.engine.URL | str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def open_stores(
    tracker_url: sa.engine.URL | str | None,
    handoff_url: str | None,
    helpdesk_url: str | None,
) -> tuple[Stores, list[str]]:
    """The stores at these URLs (None: left out); a SQLite file that does not exist is left out
    too, and said so in the notes returned."""
    from handoff.store import HandoffStore, create_db_engine

    stores, notes = Stores(), []
    for name, url in (("tracker", tracker_url), ("handoff", handoff_url), ("helpdesk", helpdesk_url)):
        if url is None:
            continue
        parsed = sa.engine.make_url(url)
        shown = _shown(parsed)
        if _missing(parsed):
            notes.append(f"{name}: {shown} does not exist: nothing stored there")
            continue
        stores.names[name] = shown
        if name == "tracker":
            stores.tracker = TrackerEvents(create_db_engine(parsed))
        elif name == "handoff":
            stores.handoff = HandoffStore(str(url))
        else:
            from helpdesk.db import create_engine_for, init_database
            from helpdesk.store import TicketStore

            stores.helpdesk = TicketStore(init_database(create_engine_for(str(url))))
    return stores, notes


def close_stores(stores: Stores) -> None:
    for _, store in stores.items():
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


LABELS = {"tracker": "tracker store", "handoff": "handoff store", "helpdesk": "helpdesk"}


def render(erasure: Erasure, stores: Stores, heading: str) -> str:
    verb = "would be erased" if erasure.dry_run else "erased"
    lines = [heading]
    if erasure.conversations:
        lines.append(f"Conversations ({len(erasure.conversations)}): {', '.join(erasure.conversations)}")
    else:
        lines.append("Conversations: none found")
    for name, counts in erasure.counts.items():
        parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
        lines.append(f"  {LABELS[name]:<14} {stores.names.get(name, '')}: {parts} {verb}")
    if erasure.dry_run:
        lines.append("Dry run: nothing was changed.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handoff.tools.privacy_cli",
        description="Erase a customer's conversations from every store, or those past the retention period.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    forget_cmd = commands.add_parser("forget", help="erase one customer's conversations (make forget CUSTOMER=...)")
    who = forget_cmd.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", help="a customer id, email address or phone number")
    who.add_argument("--email")
    who.add_argument("--customer-id")
    who.add_argument("--phone")
    expire_cmd = commands.add_parser("expire", help="erase conversations older than the retention period (make retention)")
    expire_cmd.add_argument("--days", type=float, help=f"the retention period in days (default: {RETENTION_ENV} or 90)")
    for command in (forget_cmd, expire_cmd):
        command.add_argument("--dry-run", action="store_true", help="list what would be erased; change nothing")
        command.add_argument("--json", action="store_true", help="print one JSON object")
        command.add_argument("--endpoints", default=str(default_endpoints()), help="where the tracker store is configured (default HANDOFF_ENDPOINTS, else endpoints.yml)")
        command.add_argument("--tracker-url", help="the tracker store's database URL (instead of --endpoints)")
        command.add_argument("--database-url", help="the handoff database (default HANDOFF_DATABASE_URL)")
        command.add_argument("--helpdesk-database-url", help="the embedded helpdesk's database (default HELPDESK_DATABASE_URL)")
        command.add_argument("--no-helpdesk", action="store_true", help="leave the embedded helpdesk's database alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "forget":
            if args.customer is not None:
                customer = Customer.parse(args.customer)
            else:
                customer = Customer(customer_id=normalise_customer_id(args.customer_id), email=normalise_email(args.email), phone=normalise_phone(args.phone))
        else:
            days = args.days if args.days is not None else retention_days()
            if not days > 0:
                raise ValueError("--days must be more than 0")
        settings = load_settings()
        endpoints = Path(args.endpoints)
        tracker_url = args.tracker_url or tracker_store_url(endpoints if endpoints.is_absolute() else Path.cwd() / endpoints)
        helpdesk_url = None if args.no_helpdesk else (args.helpdesk_database_url or settings.helpdesk_database_url)
        stores, notes = open_stores(tracker_url, args.database_url or settings.database_url, helpdesk_url)
    except (ValueError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "forget":
            erasure = forget(stores, customer, dry_run=args.dry_run)
            heading = f"Customer: {customer}"
        else:
            erasure = expire(stores, time.time() - days * DAY, dry_run=args.dry_run)
            heading = f"Retention: conversations with no activity in the last {days:g} days"
    except sa.exc.SQLAlchemyError as exc:
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 3
    finally:
        close_stores(stores)
    if args.json:
        print(json.dumps({**erasure.as_dict(), "stores": stores.names, "notes": notes}, indent=2))
    else:
        print(render(erasure, stores, heading))
        for note in notes:
            print(f"  ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
