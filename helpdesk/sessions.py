"""Agent sessions kept in the helpdesk database, so that signing out really ends them.

The session cookie holds nothing but a random token (``secrets.token_urlsafe(32)``); the table
``agent_sessions`` holds its SHA-256, the agent's login, when it was made and last used, when it
expires and whether it was revoked. A session is valid while all of these hold:

* it has not been revoked (signing out, "sign out everywhere", a changed password at start-up);
* it is younger than :data:`SESSION_MAX_AGE` (absolute, whatever the activity);
* it was used within the last :data:`SESSION_IDLE_TIMEOUT`;
* the agent is still listed with the same password (a keyed fingerprint of login and password is
  stored with the row, so a new password or a removed agent ends the agent's sessions).

Checking a session is one primary-key lookup; the last-seen time is written at most once every
:data:`TOUCH_INTERVAL` per session. Expired rows are deleted at start-up and at every sign-in.

Everything here is synchronous SQLAlchemy; the web handlers call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from helpdesk.auth import Agent, AgentDirectory
from helpdesk.db import AgentSession, utcnow

logger = logging.getLogger("helpdesk.auth")

#: The longest a sign-in lasts, in seconds, however busy the agent is (a working day and a half).
SESSION_MAX_AGE = 12 * 3600
#: A session unused for this long, in seconds, has ended (a console left open and forgotten).
SESSION_IDLE_TIMEOUT = 2 * 3600
#: The last-seen time of a session is written at most this often, in seconds.
TOUCH_INTERVAL = 60

# What secrets.token_urlsafe(32) produces: 43 URL-safe base64 characters. Anything else is refused
# before it reaches the database.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def hash_token(token: str) -> str:
    """The hex SHA-256 of a cookie token: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class SessionStore:
    """Issues, checks and revokes agent sessions stored in ``agent_sessions``."""

    def __init__(
        self,
        session_factory: sessionmaker,
        secret: str,
        max_age: int = SESSION_MAX_AGE,
        idle_timeout: int = SESSION_IDLE_TIMEOUT,
    ) -> None:
        self._sessions = session_factory
        # A key of its own, derived from the shared secret: the fingerprint of a password is
        # useless to someone who reads the table without the secret.
        self._key = hmac.new(
            secret.encode("utf-8"), b"helpdesk agent session fingerprint v2", hashlib.sha256
        ).digest()
        self.max_age = max_age
        self.idle_timeout = idle_timeout

    def fingerprint(self, agent: Agent) -> str:
        """A keyed digest of the agent's login and password; changes with the password."""
        material = agent.login.lower().encode("utf-8") + b"\0" + agent.password.encode("utf-8")
        return hmac.new(self._key, material, hashlib.sha256).hexdigest()

    def issue(self, agent: Agent, now: datetime | None = None) -> str:
        """Start a session for ``agent``; return the token for the cookie (stored only hashed)."""
        now = now or utcnow()
        token = secrets.token_urlsafe(32)
        with self._sessions() as session:
            session.execute(self._expired(now))
            session.add(
                AgentSession(
                    token_hash=hash_token(token),
                    login=agent.login.lower(),
                    fingerprint=self.fingerprint(agent),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(seconds=self.max_age),
                )
            )
            session.commit()
        return token

    @staticmethod
    def _live_row(session: Any, token: str | None) -> AgentSession | None:
        """The session row of a well-formed ``token`` that was not revoked, if any."""
        if not token or not _TOKEN_PATTERN.fullmatch(token):
            return None
        row = session.get(AgentSession, hash_token(token))
        return None if row is None or row.revoked_at is not None else row

    def verify(
        self,
        token: str | None,
        directory: AgentDirectory,
        now: datetime | None = None,
        touch: bool = True,
    ) -> Agent | None:
        """The signed-in agent, or None for a missing, unknown, revoked, expired or outdated token.

        With ``touch`` (a request by the agent) the session's last-seen time moves on, at most
        once every :data:`TOUCH_INTERVAL`.
        """
        now = now or utcnow()
        with self._sessions() as session:
            row = self._live_row(session, token)
            if row is None:
                return None
            if now >= row.expires_at or now - row.last_seen_at >= self._idle:
                return None
            agent = directory.get(row.login)
            if agent is None or not hmac.compare_digest(row.fingerprint, self.fingerprint(agent)):
                return None
            if touch and (now - row.last_seen_at).total_seconds() >= TOUCH_INTERVAL:
                row.last_seen_at = now
                session.commit()
            return agent

    def revoke(self, token: str | None, now: datetime | None = None) -> str | None:
        """End the session of ``token`` (signing out); the login whose live session it was."""
        now = now or utcnow()
        with self._sessions() as session:
            row = self._live_row(session, token)
            if row is None:
                return None
            row.revoked_at = now
            session.commit()
            return row.login

    def revoke_agent(self, login: str, now: datetime | None = None) -> int:
        """End every session of ``login`` ("sign out everywhere"); how many were ended."""
        now = now or utcnow()
        with self._sessions() as session:
            result = session.execute(
                sa.update(AgentSession)
                .where(AgentSession.login == (login or "").strip().lower())
                .where(AgentSession.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            session.commit()
            return int(result.rowcount or 0)

    def revoke_outdated(self, directory: AgentDirectory, now: datetime | None = None) -> int:
        """Revoke the live sessions of agents no longer listed or whose password changed (at
        start-up: :meth:`verify` refuses them anyway, this makes it visible in the table)."""
        now = now or utcnow()
        ended = 0
        with self._sessions() as session:
            rows = session.execute(
                sa.select(AgentSession.token_hash, AgentSession.login, AgentSession.fingerprint)
                .where(AgentSession.revoked_at.is_(None))
                .where(AgentSession.expires_at > now)
            ).all()
            outdated = []
            for token_hash, login, fingerprint in rows:
                agent = directory.get(login)
                if agent is None or not hmac.compare_digest(fingerprint, self.fingerprint(agent)):
                    outdated.append(token_hash)
            for start in range(0, len(outdated), 500):
                result = session.execute(
                    sa.update(AgentSession)
                    .where(AgentSession.token_hash.in_(outdated[start : start + 500]))
                    .values(revoked_at=now)
                )
                ended += int(result.rowcount or 0)
            session.commit()
        return ended

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete the rows of sessions that can no longer be used; how many were deleted."""
        with self._sessions() as session:
            result = session.execute(self._expired(now or utcnow()))
            session.commit()
            return int(result.rowcount or 0)

    def live_count(self, login: str, now: datetime | None = None) -> int:
        """How many usable sessions ``login`` has (revoked, expired and idle ones not counted)."""
        now = now or utcnow()
        with self._sessions() as session:
            return session.execute(
                sa.select(sa.func.count())
                .select_from(AgentSession)
                .where(AgentSession.login == login.lower())
                .where(AgentSession.revoked_at.is_(None))
                .where(AgentSession.expires_at > now)
                .where(AgentSession.last_seen_at > now - self._idle)
            ).scalar_one()

    @property
    def _idle(self) -> timedelta:
        return timedelta(seconds=self.idle_timeout)

    def _expired(self, now: datetime) -> sa.sql.Delete:
        # Revoked rows stay until they would have expired anyway, as a record of the sign-out.
        return sa.delete(AgentSession).where(
            sa.or_(AgentSession.expires_at <= now, AgentSession.last_seen_at <= now - self._idle)
        )
