"""Agent sign-in: who may use the console, and the signed session cookie that says who is using it.

Agents come from ``HELPDESK_AGENTS`` (``"sanne:password1,piet:password2"``). Each entry is a login
and a password separated by the first colon (so a password may contain colons); the display name,
the one the customer sees in ``agent.joined`` and ``agent.message``, is the login written as a name
(``sanne`` → ``Sanne``, ``piet.jansen`` → ``Piet Jansen``).

Without ``HELPDESK_AGENTS`` a development setup gets one agent, ``agent``, with a random password
that ``python -m helpdesk`` prints at start-up; anywhere else the helpdesk refuses to start.

A session is a cookie holding the login and the time of sign-in, signed with HMAC-SHA256 under a
key derived from ``HELPDESK_SECRET``. It also carries a fingerprint of the agent's password, so
changing a password (or removing the agent) ends that agent's sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from handoff.settings import Settings, SettingsError

logger = logging.getLogger("helpdesk.auth")

SESSION_COOKIE = "helpdesk_session"
#: How long a sign-in lasts, in seconds (a working day and a half).
SESSION_MAX_AGE = 12 * 3600
DEVELOPMENT_LOGIN = "agent"
_LOGIN_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Agent:
    """Someone who may sign in to the console."""

    login: str
    name: str  # what customers and colleagues see
    password: str = field(repr=False)


def display_name(login: str) -> str:
    """``sanne`` → ``Sanne``; ``piet.jansen`` / ``piet_jansen`` / ``piet-jansen`` → ``Piet Jansen``."""
    parts = [part for part in re.split(r"[._-]+", login) if part]
    return " ".join(part[:1].upper() + part[1:] for part in parts) or login


def parse_agents(raw: str) -> list[Agent]:
    """The agents listed in a ``HELPDESK_AGENTS`` value; :class:`SettingsError` when malformed."""
    agents: list[Agent] = []
    seen_logins: set[str] = set()
    seen_names: set[str] = set()
    for index, entry in enumerate(raw.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        login, colon, password = entry.partition(":")
        login = login.strip()
        if not colon or not password:
            raise SettingsError(
                f"HELPDESK_AGENTS entry {index} ({login or '?'}) has no password: "
                "write login:password, entries separated by commas"
            )
        if not _LOGIN_PATTERN.fullmatch(login):
            raise SettingsError(
                f"HELPDESK_AGENTS entry {index}: the login {login!r} may only contain letters, "
                "digits, '.', '_' and '-' (at most 64)"
            )
        name = display_name(login)
        if login.lower() in seen_logins or name.lower() in seen_names:
            raise SettingsError(f"HELPDESK_AGENTS lists {login!r} twice")
        seen_logins.add(login.lower())
        seen_names.add(name.lower())
        agents.append(Agent(login=login, name=name, password=password))
    if not agents:
        raise SettingsError("HELPDESK_AGENTS is set but lists no agent (login:password,...)")
    return agents


class AgentDirectory:
    """The agents who may sign in, looked up by login (case-insensitive)."""

    def __init__(self, agents: Iterable[Agent], generated_password: str | None = None) -> None:
        self._agents = {agent.login.lower(): agent for agent in agents}
        #: Set when the development agent was made up because HELPDESK_AGENTS is empty.
        self.generated_password = generated_password
        # Compared against when the login is unknown, so a wrong login takes as long as a
        # wrong password.
        self._dummy = secrets.token_bytes(32)

    def __len__(self) -> int:
        return len(self._agents)

    def get(self, login: str) -> Agent | None:
        return self._agents.get((login or "").strip().lower())

    def authenticate(self, login: str, password: str) -> Agent | None:
        """The agent when ``password`` is theirs (compared in constant time), else None."""
        agent = self.get(login)
        expected = agent.password.encode("utf-8") if agent else self._dummy
        matches = hmac.compare_digest(
            hashlib.sha256(expected).digest(),
            hashlib.sha256((password or "").encode("utf-8")).digest(),
        )
        return agent if agent is not None and matches else None


def load_agents(settings: Settings, environ: Mapping[str, str] | None = None) -> AgentDirectory:
    """The agents from ``HELPDESK_AGENTS``; in development without it, one ``agent`` with a random
    password. Raises :class:`SettingsError` outside development when it is not set.
    """
    environ = os.environ if environ is None else environ
    raw = (environ.get("HELPDESK_AGENTS") or "").strip()
    if raw:
        return AgentDirectory(parse_agents(raw))
    if not settings.is_development:
        raise SettingsError(
            f"HELPDESK_AGENTS is not set while HANDOFF_ENV={settings.environment!r}: list who may "
            'sign in to the helpdesk, e.g. HELPDESK_AGENTS="sanne:<password>,piet:<password>"'
        )
    password = secrets.token_urlsafe(12)
    agent = Agent(login=DEVELOPMENT_LOGIN, name=display_name(DEVELOPMENT_LOGIN), password=password)
    return AgentDirectory([agent], generated_password=password)


def development_banner(directory: AgentDirectory) -> str | None:
    """The loud start-up notice with the made-up development password, or None."""
    if directory.generated_password is None:
        return None
    line = "!" * 78
    return "\n".join(
        [
            line,
            "!!! HELPDESK_AGENTS is not set: development sign-in for the agent console",
            f"!!!     login:    {DEVELOPMENT_LOGIN}",
            f"!!!     password: {directory.generated_password}",
            "!!! The password changes at every start. Set HELPDESK_AGENTS=\"login:password,...\"",
            "!!! to choose agents and passwords; outside development it is required.",
            line,
        ]
    )


class SignInThrottle:
    """Refuses further attempts for a login from one address after too many failures in a row.

    Keyed by address and login, so guessing one agent's password from one place is slowed down
    without letting anyone lock an agent out from elsewhere.
    """

    def __init__(self, max_failures: int = 10, window_seconds: float = 900) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[tuple[str, str], list[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def retry_after(self, address: str, login: str, now: float | None = None) -> int:
        """Seconds until ``login`` may be tried again from ``address`` (0: now)."""
        now = time.monotonic() if now is None else now
        recent = self._recent((address, login.strip().lower()), now)
        if len(recent) < self.max_failures:
            return 0
        return max(int(recent[0] + self.window_seconds - now) + 1, 1)

    def failed(self, address: str, login: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        key = (address, login.strip().lower())
        self._failures[key] = [*self._recent(key, now), now]
        if len(self._failures) > 10_000:  # bounded memory under a flood of made-up logins
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str, login: str) -> None:
        self._failures.pop((address, login.strip().lower()), None)


# --- session cookie --------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks the signed session cookie value ``<payload>.<signature>``."""

    def __init__(self, secret: str, max_age: int = SESSION_MAX_AGE) -> None:
        # A key of its own, derived from the shared secret, so a session signature can never
        # pass for a webhook signature or the other way round.
        self._key = hmac.new(
            secret.encode("utf-8"), b"helpdesk agent session v1", hashlib.sha256
        ).digest()
        self.max_age = max_age

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def _fingerprint(self, agent: Agent) -> str:
        material = agent.login.lower().encode("utf-8") + b"\0" + agent.password.encode("utf-8")
        return _b64encode(self._mac(b"fingerprint\0" + material)[:12])

    def issue(self, agent: Agent, now: float | None = None) -> str:
        payload = {
            "login": agent.login,
            "at": int(time.time() if now is None else now),
            "fp": self._fingerprint(agent),
        }
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return body + "." + _b64encode(self._mac(body.encode("ascii")))

    def verify(
        self, value: str | None, directory: AgentDirectory, now: float | None = None
    ) -> Agent | None:
        """The signed-in agent, or None for a missing, forged, expired or outdated cookie."""
        if not value or value.count(".") != 1:
            return None
        body, signature = value.split(".")
        try:
            if not hmac.compare_digest(_b64decode(signature), self._mac(body.encode("ascii"))):
                return None
            payload = json.loads(_b64decode(body))
        except ValueError:  # bad base64, JSON or characters (Unicode errors are ValueErrors)
            return None
        if not isinstance(payload, dict):
            return None
        issued = payload.get("at")
        now = time.time() if now is None else now
        if not isinstance(issued, int) or not (issued - 60 <= now <= issued + self.max_age):
            return None
        agent = directory.get(str(payload.get("login") or ""))
        if agent is None or not hmac.compare_digest(
            str(payload.get("fp") or ""), self._fingerprint(agent)
        ):
            return None
        return agent
