"""Agent sign-in: who may use the console, and the signed session cookie that says who is using it.

Agents come from ``HELPDESK_AGENTS`` (``"sanne:password1,piet:password2"``). Each entry is a login
and a password separated by the first colon (so a password may contain colons); the display name,
the one the customer sees in ``agent.joined`` and ``agent.message``, is the login written as a name
(``sanne`` → ``Sanne``, ``piet.jansen`` → ``Piet Jansen``).

Without ``HELPDESK_AGENTS`` a development setup gets one agent, ``agent``, with a random password
that ``python -m helpdesk`` prints at start-up; anywhere else the helpdesk refuses to start.

Every password in ``HELPDESK_AGENTS`` must have at least :data:`MIN_PASSWORD_LENGTH` characters:
outside development the helpdesk refuses to start otherwise (naming the agent), in development it
warns.

Sessions themselves live in the helpdesk database (:mod:`helpdesk.sessions`); the cookie
(:data:`SESSION_COOKIE`) holds only a random token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from handoff.settings import Settings, SettingsError

logger = logging.getLogger("helpdesk.auth")

SESSION_COOKIE = "helpdesk_session"
#: The fewest characters an agent's password may have.
MIN_PASSWORD_LENGTH = 12
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

    def logins(self) -> list[str]:
        """Every agent's login (lower case)."""
        return list(self._agents)

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
        agents = parse_agents(raw)
        _check_password_lengths(agents, settings)
        return AgentDirectory(agents)
    if not settings.is_development:
        raise SettingsError(
            f"HELPDESK_AGENTS is not set while HANDOFF_ENV={settings.environment!r}: list who may "
            'sign in to the helpdesk, e.g. HELPDESK_AGENTS="sanne:<password>,piet:<password>"'
        )
    password = secrets.token_urlsafe(15)  # 20 characters
    agent = Agent(login=DEVELOPMENT_LOGIN, name=display_name(DEVELOPMENT_LOGIN), password=password)
    return AgentDirectory([agent], generated_password=password)


def _check_password_lengths(agents: Iterable[Agent], settings: Settings) -> None:
    """Refuse (outside development) or warn about passwords under :data:`MIN_PASSWORD_LENGTH`;
    the message names the agents, never the passwords."""
    short = [agent.login for agent in agents if len(agent.password) < MIN_PASSWORD_LENGTH]
    if not short:
        return
    message = (
        f"HELPDESK_AGENTS: the password of {', '.join(short)} is shorter than "
        f"{MIN_PASSWORD_LENGTH} characters"
    )
    if not settings.is_development:
        raise SettingsError(
            f"{message} while HANDOFF_ENV={settings.environment!r}: give every agent a password "
            f"of at least {MIN_PASSWORD_LENGTH} characters"
        )
    logger.warning("%s; outside development the helpdesk would refuse to start", message)


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
    """Refuses sign-in attempts after too many recent failures, counted two ways:

    * per agent login, from any address: at most ``max_failures_per_login`` wrong passwords for one
      agent in ``window_seconds``, however many addresses the guesses come from;
    * per address (an IPv6 address counts as its /64): at most ``max_failures_per_address``
      failures in the window, whichever logins were tried.

    Flooding cannot reset it. The counters of listed agents' logins are never dropped before their
    window passes; the other counters (addresses, logins nobody has) live in a table of at most
    ``max_entries``: when it is full of live counters a new one is not made, rather than one that
    may be holding someone back being dropped. A success clears only the failures of that login
    from that address, never another address's.
    """

    def __init__(
        self,
        agent_logins: Iterable[str] = (),
        max_failures_per_login: int = 10,
        max_failures_per_address: int = 30,
        window_seconds: float = 900,
        max_entries: int = 10_000,
    ) -> None:
        self.max_failures_per_login = max_failures_per_login
        self.max_failures_per_address = max_failures_per_address
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._agent_logins = {login.strip().lower() for login in agent_logins}
        # key → failures as (monotonic time, the other half: address for a login, login for an
        # address), oldest first. Keys: ("login", login) or ("address", address).
        self._agents: dict[tuple[str, str], deque[tuple[float, str]]] = {}
        self._others: OrderedDict[tuple[str, str], deque[tuple[float, str]]] = OrderedDict()
        self._full_warned_at = -math.inf

    @staticmethod
    def address_key(address: str) -> str:
        """The unit an address is counted in: itself, or its /64 network for IPv6."""
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return (address or "-").strip()[:64]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        return str(ip)

    def _keys(self, address: str, login: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("login", login.strip().lower()), ("address", self.address_key(address))

    def _table(self, key: tuple[str, str]) -> dict[tuple[str, str], deque[tuple[float, str]]]:
        return self._agents if key[0] == "login" and key[1] in self._agent_logins else self._others

    def _recent(self, key: tuple[str, str], now: float) -> deque[tuple[float, str]]:
        table = self._table(key)
        failures = table.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0][0] >= self.window_seconds:
            failures.popleft()
        if not failures:
            del table[key]
        return failures

    def _wait(self, failures: deque[tuple[float, str]], limit: int, now: float) -> int:
        if len(failures) < limit:
            return 0
        # Allowed again once enough of the oldest failures have left the window.
        oldest_that_counts = failures[len(failures) - limit][0]
        return max(math.ceil(oldest_that_counts + self.window_seconds - now), 1)

    def retry_after(self, address: str, login: str, now: float | None = None) -> int:
        """Seconds until ``login`` may be tried from ``address`` (0: now)."""
        now = time.monotonic() if now is None else now
        login_key, address_key = self._keys(address, login)
        return max(
            self._wait(self._recent(login_key, now), self.max_failures_per_login, now),
            self._wait(self._recent(address_key, now), self.max_failures_per_address, now),
        )

    def failed(self, address: str, login: str, now: float | None = None) -> None:
        """Count a wrong password (or unknown login) for ``login`` from ``address``."""
        now = time.monotonic() if now is None else now
        login_key, address_key = self._keys(address, login)
        self._count(login_key, address_key[1], self.max_failures_per_login, now)
        self._count(address_key, login_key[1], self.max_failures_per_address, now)

    def _count(self, key: tuple[str, str], other: str, limit: int, now: float) -> None:
        failures = self._recent(key, now)
        table = self._table(key)
        if key not in table:
            if table is self._others and len(table) >= self.max_entries:
                self._drop_expired(now)
                if len(table) >= self.max_entries:
                    self._warn_full(now)
                    return
            table[key] = failures
        failures.append((now, other))
        # Only the newest `limit` failures decide anything; older ones are not kept.
        while len(failures) > limit:
            failures.popleft()
        if table is self._others:
            self._others.move_to_end(key)

    def _drop_expired(self, now: float) -> None:
        # Ordered by last failure: the front holds the counters that have been quiet longest.
        while self._others:
            key, failures = next(iter(self._others.items()))
            if now - failures[-1][0] < self.window_seconds:
                break
            del self._others[key]

    def _warn_full(self, now: float) -> None:
        if now - self._full_warned_at >= self.window_seconds:
            self._full_warned_at = now
            logger.warning(
                "sign-in throttle full (%d live counters): new addresses and unknown logins are "
                "not counted until some expire; agents' logins still are",
                len(self._others),
            )

    def succeeded(self, address: str, login: str, now: float | None = None) -> None:
        """Forget the failures of ``login`` from ``address`` (only those)."""
        now = time.monotonic() if now is None else now
        login_key, address_key = self._keys(address, login)
        for key, other in ((login_key, address_key[1]), (address_key, login_key[1])):
            failures = self._recent(key, now)
            kept = [failure for failure in failures if failure[1] != other]
            if len(kept) != len(failures):
                failures.clear()
                failures.extend(kept)
                if not failures:
                    del self._table(key)[key]
