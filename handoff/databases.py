"""Where the project's databases are: the handoff database (``handoff.settings``) and the SQL
tracker store Rasa is configured with in ``endpoints.yml``.

Read by the console pages and the operator tools alike (the helpdesk may not import
``handoff.tools``). Nothing connects here: these are URLs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from handoff.settings import PROJECT_ROOT, SettingsError

#: The tracker store types that keep their events in an SQL table ``events``.
SQL_TRACKER_STORES = {
    "sql",
    "handoff.server.tracker_store.handoffsqltrackerstore",
    "rasa.core.tracker_store.sqltrackerstore",
}

_ENV_VAR = re.compile(r"\$\{([^}]+)\}")


def _expand(value: Any, where: Path) -> Any:
    """``${VAR}`` in a string replaced from the environment, as Rasa reads endpoints.yml."""
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SettingsError(f"{where}: the tracker store needs the environment variable {name}")
        return os.environ[name]

    return _ENV_VAR.sub(lookup, value)


def default_endpoints() -> Path:
    """The endpoints file the Rasa server runs with: ``HANDOFF_ENDPOINTS``, else the project's
    endpoints.yml (a relative path is taken from the project root)."""
    configured = os.environ.get("HANDOFF_ENDPOINTS", "").strip()
    if not configured:
        return PROJECT_ROOT / "endpoints.yml"
    path = Path(configured)
    return path if path.is_absolute() else PROJECT_ROOT / path


def tracker_store_url(endpoints_path: str | Path | None = None) -> str | None:
    """The database URL of the SQL tracker store configured in ``endpoints_path`` (default:
    `default_endpoints()`), or None when it configures no SQL tracker store (conversations are
    then kept in memory only, or somewhere that is not an ``events`` table).

    ``${VAR}`` values are read from the environment, as Rasa does (a missing variable raises
    :class:`~handoff.settings.SettingsError`, as does a file that cannot be read); a relative
    SQLite path is taken from the project root, where the servers run. The URL keeps its
    password: show it with ``sa.engine.make_url(url).render_as_string(hide_password=True)``.
    """
    import yaml

    endpoints = Path(endpoints_path) if endpoints_path is not None else default_endpoints()
    try:
        document = yaml.safe_load(endpoints.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read {endpoints}: {exc}") from exc
    section = document.get("tracker_store") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        return None
    kind = str(section.get("type") or "").lower()
    if kind not in SQL_TRACKER_STORES:
        return None
    options = {key: _expand(value, endpoints) for key, value in section.items()}
    dialect = str(options.get("dialect") or "sqlite")
    db = str(options.get("db") or "rasa.db")
    host = options.get("url")
    if host and "://" in str(host):
        return str(host)
    if dialect == "sqlite":
        path = Path(db)
        return f"sqlite:///{path if path.is_absolute() else PROJECT_ROOT / path}"
    port = options.get("port")
    if host:
        parsed = urlsplit(f"scheme://{host}")
        port, host = parsed.port or port, parsed.hostname or host
    url = sa.engine.URL.create(
        dialect,
        username=options.get("username") or None,
        password=options.get("password") or None,
        host=host or None,
        port=int(port) if port not in (None, "") else None,
        database=db,
        query=options.get("query") or {},
    )
    return url.render_as_string(hide_password=False)


def handoff_database_url() -> str:
    """The handoff database (``HANDOFF_DATABASE_URL``, else var/handoff.db)."""
    from handoff.settings import get_settings

    return get_settings().database_url


def shown(url: str | sa.engine.URL) -> str:
    """The URL as it may be printed: without its password."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def missing_sqlite_file(url: str | sa.engine.URL) -> bool:
    """A SQLite file that does not exist (nothing is stored there; opening it would create it)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).exists()
