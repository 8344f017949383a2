"""Business hours per helpdesk queue, and the clock every business-hours decision reads.

``handoff_rules.yml`` says, per queue (``queues:``), when people are there to take a handoff: opening
hours per weekday in the queue's own time zone, whole days closed (holidays), how many opening
hours a follow-up (a callback or an email answer) may take, and what the customer reads when the
queue is closed. The assistant uses this to tell a customer when the team is back instead of
letting them wait for nobody, and to give each follow-up a due time; the helpdesk uses the same
clock to mark follow-ups overdue.

:func:`now` is that clock: the real time, or the fixed instant in ``HANDOFF_NOW`` so a tester can
try a Sunday night or Christmas on a Tuesday afternoon. Timers (timeouts) keep using real time.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# -- the clock ------------------------------------------------------------------------------------

PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})


class ClockError(ValueError):
    """``HANDOFF_NOW`` cannot be used: not a time with an offset, or set in production."""


def _parse_instant(raw: str) -> datetime:
    text = raw.strip()
    if text[-1:] in {"Z", "z"}:
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ClockError(
            f"HANDOFF_NOW must be an ISO 8601 time with a UTC offset, e.g. "
            f"2026-12-07T10:00:00+01:00; got {raw!r}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ClockError(
            f"HANDOFF_NOW must include a UTC offset (e.g. +01:00 or Z) so it names one instant; got {raw!r}"
        )
    return moment.astimezone(timezone.utc)


def now() -> datetime:
    """The current time, aware, in UTC: ``HANDOFF_NOW`` when set (never in production), else the
    real time. Read on every call, so changing the variable takes effect at once."""
    raw = os.environ.get("HANDOFF_NOW")
    if raw is None or not raw.strip():
        return datetime.now(timezone.utc)
    environment = (os.environ.get("HANDOFF_ENV") or "development").strip().lower()
    if environment in PRODUCTION_ENVIRONMENTS:
        raise ClockError(
            f"HANDOFF_NOW is set ({raw!r}) while HANDOFF_ENV={environment!r}: a fixed clock is for "
            "testing only. Unset HANDOFF_NOW."
        )
    return _parse_instant(raw)


# -- business hours -------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PLACEHOLDERS = frozenset({"name", "opens"})
DEFAULT_SLA_HOURS = 4.0
QUEUE_KEYS = frozenset({"name", "time_zone", "hours", "holidays", "follow_up_sla_hours", "closed_text"})
REQUIRED_KEYS = ("name", "time_zone", "hours", "closed_text")

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")

DAY_NAMES = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}
MONTH_NAMES = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
           "oktober", "november", "december"),
}
# How a time is said: later today, tomorrow, or on a later day.
PHRASES = {
    "en": {"today": "today at {time}", "tomorrow": "tomorrow at {time}", "later": "on {day} {date} {month} at {time}"},
    "nl": {"today": "vandaag om {time}", "tomorrow": "morgen om {time}", "later": "{day} {date} {month} om {time}"},
}
DEFAULT_CLOSED_TEXT = {
    "en": "Our {name} is not available right now. We are back {opens}.",
    "nl": "Onze {name} is nu niet bereikbaar. We zijn er weer {opens}.",
}
FALLBACK_LANGUAGE = "en"


class HoursError(ValueError):
    """The ``queues:`` section of ``handoff_rules.yml`` does not say what it must.

    ``handoff.triggers`` turns it into a ``RulesError`` with the same message."""


def _language(language: str | None) -> str:
    code = (language or FALLBACK_LANGUAGE).strip().lower()[:2]
    return code if code in DAY_NAMES else FALLBACK_LANGUAGE


def _pick(texts: tuple[tuple[str, str], ...], language: str | None) -> str | None:
    by_language = dict(texts)
    wanted = (language or FALLBACK_LANGUAGE).strip().lower()[:2]
    for code in (wanted, FALLBACK_LANGUAGE):
        if code in by_language:
            return by_language[code]
    return next(iter(by_language.values()), None)


def _fields(text: str) -> Iterator[tuple[str, str | None]]:
    for literal, field, spec, conversion in string.Formatter().parse(text):
        written = None
        if field is not None:
            written = field + ("!" + conversion if conversion else "") + (":" + spec if spec else "")
        yield literal, written


def placeholders(text: str) -> set[str]:
    """What a text writes between braces ("name", "opens", "name!r", ""); ``{{`` and ``}}`` are
    literal braces. Raises ``ValueError`` for an unbalanced brace."""
    return {written for _, written in _fields(text) if written is not None}


def _fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with ``{name}``-style placeholders filled from ``values``; anything else between
    braces is left as written."""
    out = []
    for literal, written in _fields(text):
        out.append(literal)
        if written is not None:
            out.append(values[written] if written in values else "{" + written + "}")
    return "".join(out)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"business hours need an aware datetime (with a time zone), got {at!r}")
    return at


@dataclass(frozen=True)
class QueueHours:
    """When one helpdesk queue is staffed, in its own time zone.

    ``hours`` holds, Monday first, each weekday's opening ranges as minutes since local midnight
    (``(540, 1050)`` is 09:00-17:30; an end of 1440 is midnight). ``holidays`` are whole days
    closed, as local dates. ``names`` and ``closed_texts`` are ``(language, text)`` pairs.
    """

    queue: str
    time_zone: str = "UTC"
    hours: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    follow_up_sla_hours: float = DEFAULT_SLA_HOURS
    names: tuple[tuple[str, str], ...] = ()
    closed_texts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def always_open(cls, queue: str) -> QueueHours:
        """A queue without business hours (not in ``queues:``): open every minute of every day."""
        return cls(queue=queue, hours=(((0, 1440),),) * 7)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def _intervals_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals in UTC, day by day from ``day`` (local), in time order."""
        zone = self.zone
        # Holidays are finite and every queue is open some day of the week, so this ends.
        for offset in range(len(self.holidays) + 3 * 366):
            current = day + timedelta(days=offset)
            if current in self.holidays:
                continue
            for start, end in self.hours[current.weekday()]:
                opens = self._local(current, start, zone)
                if end < 1440:
                    closes = self._local(current, end, zone)
                else:  # 24:00 is the next day's midnight
                    closes = datetime.combine(current + timedelta(days=1), time(0), tzinfo=zone)
                opens_utc, closes_utc = opens.astimezone(timezone.utc), closes.astimezone(timezone.utc)
                if closes_utc > opens_utc:
                    yield opens_utc, closes_utc

    @staticmethod
    def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
        return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)

    def _from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals that end after ``at`` (UTC), in time order."""
        at = _aware(at).astimezone(timezone.utc)
        local_day = at.astimezone(self.zone).date()
        for opens, closes in self._intervals_from(local_day - timedelta(days=1)):
            if closes > at:
                yield opens, closes

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` falls in an opening range (start included, end excluded)."""
        opens, _ = next(self._from(at))
        return opens <= _aware(at)

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself when open, else the next moment the queue opens; in the queue's zone."""
        opens, _ = next(self._from(at))
        return max(opens, _aware(at).astimezone(timezone.utc)).astimezone(self.zone)

    def due_at(self, at: datetime, sla_hours: float | None = None) -> datetime:
        """``sla_hours`` (default: the queue's ``follow_up_sla_hours``) of opening time counted from
        ``at`` or the next opening after it; nights, closed days and holidays do not count. UTC."""
        hours = self.follow_up_sla_hours if sla_hours is None else sla_hours
        if hours < 0:
            raise ValueError(f"sla_hours must not be negative, got {hours!r}")
        remaining = timedelta(hours=hours)
        start = _aware(at).astimezone(timezone.utc)
        for opens, closes in self._from(start):
            begin = max(opens, start)
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        raise AssertionError("unreachable: a queue is open some day of every week")  # pragma: no cover

    def opens_phrase(self, at: datetime, language: str | None, *, since: datetime | None = None) -> str:
        """:meth:`next_opening` of ``at`` as said in a sentence: "today at 09:00", "tomorrow at
        09:00", "on Monday 7 December at 09:00" (nl: "vandaag om 09:00", "morgen om 09:00",
        "maandag 7 december om 09:00"). Today and tomorrow are counted from ``since`` (default
        ``at``), in the queue's zone: pass the current time as ``since`` to say a later moment,
        such as a due time, as the customer hears it now."""
        code = _language(language)
        phrases = PHRASES[code]
        opening = self.next_opening(at)
        today = _aware(since or at).astimezone(self.zone).date()
        clock = opening.strftime("%H:%M")
        days = (opening.date() - today).days
        if days <= 0:
            return phrases["today"].format(time=clock)
        if days == 1:
            return phrases["tomorrow"].format(time=clock)
        return phrases["later"].format(
            day=DAY_NAMES[code][opening.weekday()],
            date=opening.day,
            month=MONTH_NAMES[code][opening.month - 1],
            time=clock,
        )

    def display_name(self, language: str | None) -> str:
        """The queue's name for customers in ``language`` (English, else the queue key, when missing)."""
        return _pick(self.names, language) or self.queue

    def closed_message(self, at: datetime, language: str | None) -> str:
        """The closed text in ``language`` with ``{name}`` and ``{opens}`` filled in."""
        text = _pick(self.closed_texts, language) or DEFAULT_CLOSED_TEXT[_language(language)]
        return _fill(text, {"name": self.display_name(language), "opens": self.opens_phrase(at, language)})


# -- reading the ``queues:`` section --------------------------------------------------------------


def _parse_range(text: Any, where: str) -> tuple[int, int]:
    match = _RANGE.match(text) if isinstance(text, str) else None
    if not match:
        raise HoursError(
            f"{where}: {text!r} is not an opening range; write \"HH:MM-HH:MM\" in quotes, "
            "a list of them, or closed"
        )
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59:
        raise HoursError(f"{where}: {text!r} starts at a time that does not exist")
    if end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
        raise HoursError(f"{where}: {text!r} ends at a time that does not exist (24:00 is the latest)")
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if end <= start:
        raise HoursError(f"{where}: {text!r} ends before it starts (a range cannot pass midnight)")
    return start, end


def _parse_day(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str) and value.strip().lower() == "closed":
        return ()
    items = value if isinstance(value, list) else [value]
    if not items:
        raise HoursError(f"{where}: an empty list; write closed for a day without opening hours")
    ranges = sorted(_parse_range(item, where) for item in items)
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        if start < end:
            raise HoursError(f"{where}: opening ranges overlap")
    return tuple(ranges)


def _parse_texts(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value:
        raise HoursError(f"{where}: must map languages to texts, e.g. {{en: ..., nl: ...}}")
    texts = []
    for language, text in value.items():
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            raise HoursError(f"{where}: {language!r} is not a two-letter language code")
        if not isinstance(text, str) or not text.strip():
            raise HoursError(f"{where}.{language}: must be a non-empty text")
        try:
            placeholders(text)
        except ValueError as exc:
            raise HoursError(f"{where}.{language}: {exc} (write {{{{ and }}}} for a literal brace)") from None
        texts.append((language, text.strip()))
    return tuple(texts)


def _parse_holiday(value: Any, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # YAML reads an unquoted 2026-12-25 as a date
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise HoursError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")


def parse_queue(queue: str, spec: Any, source: str = "handoff_rules.yml") -> QueueHours:
    """One entry of ``queues:``; errors name the file, the queue and the key."""
    where = f"{source}: queues: {queue}"
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise HoursError(f"{where}: a queue name is lower case letters, digits, _ and - (e.g. support)")
    if not isinstance(spec, dict):
        raise HoursError(f"{where}: must be a mapping with the keys {', '.join(REQUIRED_KEYS)}")
    unknown = sorted(str(key) for key in spec if key not in QUEUE_KEYS)
    if unknown:
        raise HoursError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(QUEUE_KEYS))}")
    missing = [key for key in REQUIRED_KEYS if key not in spec]
    if missing:
        raise HoursError(f"{where}: {', '.join(missing)} missing")

    zone_name = spec["time_zone"]
    try:
        if not isinstance(zone_name, str) or not zone_name.strip():
            raise ValueError
        ZoneInfo(zone_name)
    except (ValueError, ZoneInfoNotFoundError):
        raise HoursError(f"{where}: time_zone: {zone_name!r} is not a known time zone (e.g. Europe/Amsterdam)") from None

    hours_spec = spec["hours"]
    if not isinstance(hours_spec, dict):
        raise HoursError(f"{where}: hours: must map weekdays ({', '.join(WEEKDAYS)}) to opening hours")
    unknown_days = [str(day) for day in hours_spec if day not in WEEKDAYS]
    if unknown_days:
        raise HoursError(f"{where}: hours: unknown weekday(s) {', '.join(unknown_days)}; use {', '.join(WEEKDAYS)}")
    # A weekday left out is closed.
    hours = tuple(_parse_day(hours_spec[day], f"{where}: hours.{day}") if day in hours_spec else () for day in WEEKDAYS)
    if not any(hours):
        raise HoursError(f"{where}: hours: closed every day; a queue must open on some day")

    holidays_spec = spec.get("holidays") or []
    if not isinstance(holidays_spec, list):
        raise HoursError(f"{where}: holidays: must be a list of dates (YYYY-MM-DD)")
    holidays = frozenset(_parse_holiday(day, f"{where}: holidays") for day in holidays_spec)

    sla = spec.get("follow_up_sla_hours", DEFAULT_SLA_HOURS)
    if isinstance(sla, bool) or not isinstance(sla, (int, float)) or sla < 0:
        raise HoursError(f"{where}: follow_up_sla_hours: must be a number of hours, 0 or more; got {sla!r}")

    return QueueHours(
        queue=queue,
        time_zone=zone_name,
        hours=hours,
        holidays=holidays,
        follow_up_sla_hours=float(sla),
        names=_parse_texts(spec["name"], f"{where}: name"),
        closed_texts=_parse_texts(spec["closed_text"], f"{where}: closed_text"),
    )


def parse_queues(data: Mapping[str, Any] | None, source: str = "handoff_rules.yml") -> dict[str, QueueHours]:
    """The ``queues:`` section (a mapping of queue name to its hours), parsed and checked.

    Raises :class:`HoursError` naming the file, queue and key of the first problem."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise HoursError(f"{source}: queues: must map queue names to their business hours")
    return {queue: parse_queue(queue, spec, source) for queue, spec in data.items()}


def load_queues(rules_data: Mapping[str, Any] | None, source: str = "handoff_rules.yml") -> dict[str, QueueHours]:
    """The queues of a whole parsed rules file (its ``queues:`` section; none when absent)."""
    return parse_queues((rules_data or {}).get("queues"), source)


def get_queues(path: Path | None = None) -> dict[str, QueueHours]:
    """The queues of ``handoff_rules.yml`` (or ``path``), re-read when the file changes on disk.

    Errors are ``handoff.triggers.RulesError``."""
    from handoff.triggers import load_rules  # handoff.triggers imports this module

    return load_rules(path).queues
