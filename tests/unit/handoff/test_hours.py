"""Business hours per queue (handoff/hours.py): opening edges, weekends, holidays, summer time,
next opening, due times, the phrases customers read, the clock, and the errors designers get."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from handoff import hours
from handoff.hours import ClockError, HoursError, QueueHours, get_queues, load_queues, parse_queues
from handoff.triggers import RulesError, load_rules, parse_rules

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
WEEKDAYS_9_TO_1730 = {day: "09:00-17:30" for day in ("mon", "tue", "wed", "thu", "fri")}


def local(year, month, day, hour=0, minute=0, second=0):
    return datetime(year, month, day, hour, minute, second, tzinfo=AMS)


def queue(name="q", **overrides):
    spec = {
        "name": {"en": "test team", "nl": "testteam"},
        "time_zone": "Europe/Amsterdam",
        "hours": dict(WEEKDAYS_9_TO_1730),
        "closed_text": {"en": "Our {name} is closed. Back {opens}.", "nl": "Ons {name} is dicht. Terug {opens}."},
    }
    spec.update(overrides)
    return parse_queues({name: spec})[name]


@pytest.fixture
def project():
    return get_queues()


@pytest.fixture
def support(project):
    return project["support"]


@pytest.fixture
def sales(project):
    return project["sales"]


# -- the project's own file -----------------------------------------------------------------------


def test_the_project_rules_have_hours_for_every_queue(project):
    assert set(project) == {"support", "sales", "supervisor"}
    support = project["support"]
    assert support.time_zone == "Europe/Amsterdam" and support.follow_up_sla_hours == 4
    assert support.display_name("en") == "customer service" and support.display_name("nl") == "klantenservice"
    assert project["sales"].display_name("nl") == "verkoopteam"
    assert project["supervisor"].hours == support.hours and project["supervisor"].holidays == support.holidays
    assert date(2026, 12, 25) in support.holidays and date(2027, 3, 29) in support.holidays  # Easter Monday
    assert load_rules().queues == project


def test_the_project_closed_texts_read_naturally(project):
    saturday_evening = local(2026, 12, 5, 17, 0)
    said = {name: (q.closed_message(saturday_evening, "en"), q.closed_message(saturday_evening, "nl")) for name, q in project.items()}
    assert said["support"] == (
        "Our customer service team is not available right now. We are back on Monday 7 December at 09:00.",
        "Onze klantenservice is nu niet bereikbaar. We zijn er weer maandag 7 december om 09:00.",
    )
    assert said["sales"] == (
        "Our sales team is not available right now. We are back on Monday 7 December at 09:00.",
        "Ons verkoopteam is nu niet bereikbaar. We zijn er weer maandag 7 december om 09:00.",
    )
    assert said["supervisor"] == (
        "No supervisor is available right now. We are back on Monday 7 December at 09:00.",
        "Er is nu geen leidinggevende bereikbaar. We zijn er weer maandag 7 december om 09:00.",
    )


# -- open or closed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, expected",
    [
        (local(2026, 12, 7, 8, 59, 59), False),
        (local(2026, 12, 7, 9, 0), True),  # the start is included
        (local(2026, 12, 7, 17, 29, 59), True),
        (local(2026, 12, 7, 17, 30), False),  # the end is not
        (local(2026, 12, 7, 23, 0), False),
        (local(2026, 12, 5, 9, 59), False),  # Saturday opens later
        (local(2026, 12, 5, 10, 0), True),
        (local(2026, 12, 5, 15, 59), True),
        (local(2026, 12, 5, 16, 0), False),
        (local(2026, 12, 6, 12, 0), False),  # Sunday: closed
        (datetime(2026, 12, 7, 8, 0, tzinfo=UTC), True),  # 09:00 in Amsterdam (winter, +01:00)
        (datetime(2026, 12, 7, 7, 59, tzinfo=UTC), False),
    ],
)
def test_support_is_open_from_its_start_up_to_its_end(support, moment, expected):
    assert support.is_open(moment) is expected


def test_sales_is_closed_all_weekend(sales):
    assert sales.is_open(local(2026, 12, 4, 16, 59))
    assert not sales.is_open(local(2026, 12, 4, 17, 0))
    assert not sales.is_open(local(2026, 12, 5, 12, 0))
    assert not sales.is_open(local(2026, 12, 6, 12, 0))


def test_holidays_are_closed_all_day(support):
    assert support.is_open(local(2026, 12, 24, 12, 0))
    assert not support.is_open(local(2026, 12, 25, 12, 0))  # Christmas Day, a Friday
    assert not support.is_open(local(2026, 12, 26, 12, 0))  # Boxing Day, a Saturday
    assert not support.is_open(local(2027, 1, 1, 12, 0))
    assert support.is_open(local(2027, 1, 2, 12, 0))


def test_a_holiday_is_a_day_in_the_queue_s_own_zone():
    day_and_night = queue(hours={day: "00:00-24:00" for day in hours.WEEKDAYS}, holidays=["2026-12-25"])
    assert not day_and_night.is_open(datetime(2026, 12, 24, 23, 30, tzinfo=UTC))  # 00:30 on the 25th there
    assert day_and_night.is_open(datetime(2026, 12, 24, 22, 30, tzinfo=UTC))  # 23:30 on the 24th
    assert day_and_night.is_open(datetime(2026, 12, 25, 23, 0, tzinfo=UTC))  # midnight into the 26th
    assert not day_and_night.is_open(datetime(2026, 12, 25, 22, 59, tzinfo=UTC))


def test_a_day_may_have_several_ranges():
    with_lunch = queue(hours={"mon": ["13:00-17:00", "09:00-12:00"]})
    assert with_lunch.hours[0] == ((540, 720), (780, 1020))
    assert with_lunch.is_open(local(2026, 12, 7, 11, 59))
    assert not with_lunch.is_open(local(2026, 12, 7, 12, 0))
    assert not with_lunch.is_open(local(2026, 12, 7, 12, 59))
    assert with_lunch.is_open(local(2026, 12, 7, 13, 0))
    assert with_lunch.next_opening(local(2026, 12, 7, 12, 15)) == local(2026, 12, 7, 13, 0)
    assert with_lunch.due_at(local(2026, 12, 7, 11, 0), 2) == local(2026, 12, 7, 14, 0)


def test_a_weekday_left_out_is_closed():
    mondays = queue(hours={"mon": "09:00-10:00"})
    assert mondays.is_open(local(2026, 12, 7, 9, 30))
    assert not mondays.is_open(local(2026, 12, 8, 9, 30))
    assert mondays.next_opening(local(2026, 12, 7, 10, 0)) == local(2026, 12, 14, 9, 0)


def test_a_naive_time_is_refused(support):
    with pytest.raises(ValueError, match="aware"):
        support.is_open(datetime(2026, 12, 7, 10, 0))


# -- summer time (Europe/Amsterdam: last Sunday of March and of October) --------------------------


def test_opening_hours_follow_the_local_clock_into_summer_time(support, sales):
    # Monday 23 March 2026, winter time (+01:00): 07:00 UTC is 08:00 there, closed.
    assert not support.is_open(datetime(2026, 3, 23, 7, 0, tzinfo=UTC))
    assert support.is_open(datetime(2026, 3, 23, 8, 0, tzinfo=UTC))
    # Summer time starts on Sunday 29 March; on Monday 30 March 07:00 UTC is 09:00 there, open.
    assert support.is_open(datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
    assert not support.is_open(datetime(2026, 3, 30, 6, 59, tzinfo=UTC))
    opening = support.next_opening(local(2026, 3, 28, 16, 0))  # Saturday after closing, winter time
    assert opening == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert (opening.hour, opening.minute, opening.utcoffset()) == (9, 0, timedelta(hours=2))
    # Sales, Friday 16:00 (+01:00) plus 4 opening hours: 1 on Friday, 3 on Monday in summer time.
    assert sales.due_at(local(2026, 3, 27, 16, 0)) == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


def test_opening_hours_follow_the_local_clock_back_to_winter_time(support):
    # Friday 23 October 2026, summer time (+02:00): 15:30 UTC is 17:30 there, closed.
    assert not support.is_open(datetime(2026, 10, 23, 15, 30, tzinfo=UTC))
    assert support.is_open(datetime(2026, 10, 23, 15, 29, tzinfo=UTC))
    # Winter time from Sunday 25 October; on Monday 26 October 07:00 UTC is 08:00, closed.
    assert not support.is_open(datetime(2026, 10, 26, 7, 0, tzinfo=UTC))
    assert support.is_open(datetime(2026, 10, 26, 8, 0, tzinfo=UTC))
    assert support.is_open(datetime(2026, 10, 26, 16, 29, tzinfo=UTC))  # 17:29 there
    assert support.next_opening(local(2026, 10, 24, 16, 0)) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)


def test_the_short_and_the_long_sunday_count_their_real_hours():
    day_and_night = queue(hours={day: "00:00-24:00" for day in hours.WEEKDAYS})
    # 29 March 2026 has 23 hours in Amsterdam, 25 October 2026 has 25.
    assert day_and_night.due_at(local(2026, 3, 29), 24) == local(2026, 3, 30, 1, 0)
    assert day_and_night.due_at(local(2026, 10, 25), 24) == local(2026, 10, 25, 23, 0)
    assert day_and_night.is_open(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 summer time


# -- next opening ---------------------------------------------------------------------------------


def test_next_opening_is_the_moment_itself_when_open(support):
    moment = datetime(2026, 12, 7, 10, 15, 30, tzinfo=UTC)
    opening = support.next_opening(moment)
    assert opening == moment and opening.tzinfo == AMS


def test_next_opening_later_the_same_day_and_the_next(support):
    assert support.next_opening(local(2026, 12, 7, 6, 0)) == local(2026, 12, 7, 9, 0)
    assert support.next_opening(local(2026, 12, 7, 17, 30)) == local(2026, 12, 8, 9, 0)


def test_next_opening_over_a_weekend(support, sales):
    friday_evening = local(2026, 12, 4, 18, 0)
    assert support.next_opening(friday_evening) == local(2026, 12, 5, 10, 0)  # support opens on Saturday
    assert sales.next_opening(friday_evening) == local(2026, 12, 7, 9, 0)
    assert support.next_opening(local(2026, 12, 5, 16, 0)) == local(2026, 12, 7, 9, 0)


def test_next_opening_over_christmas_and_new_year(support, sales):
    christmas_eve = local(2026, 12, 24, 18, 0)  # Thursday; Friday and Saturday are holidays, Sunday closed
    assert support.next_opening(christmas_eve) == local(2026, 12, 28, 9, 0)
    assert sales.next_opening(christmas_eve) == local(2026, 12, 28, 9, 0)
    new_years_eve = local(2026, 12, 31, 18, 0)  # Thursday; New Year's Day is a Friday
    assert support.next_opening(new_years_eve) == local(2027, 1, 2, 10, 0)
    assert sales.next_opening(new_years_eve) == local(2027, 1, 4, 9, 0)


# -- due times ------------------------------------------------------------------------------------


def test_due_at_skips_the_weekend():
    weekdays = queue()  # Monday to Friday 09:00-17:30
    due = weekdays.due_at(local(2026, 12, 4, 17, 0), 4)  # half an hour on Friday, 3.5 on Monday
    assert due == local(2026, 12, 7, 12, 30)
    assert due.tzinfo == UTC and due == datetime(2026, 12, 7, 11, 30, tzinfo=UTC)


def test_due_at_uses_the_queue_s_own_sla_and_hours(support, sales):
    friday_five = local(2026, 12, 4, 17, 0)
    assert support.due_at(friday_five) == local(2026, 12, 5, 13, 30)  # support works on Saturday
    assert sales.due_at(friday_five) == local(2026, 12, 7, 13, 0)  # sales closed at 17:00
    assert support.due_at(local(2026, 12, 8, 22, 0)) == local(2026, 12, 9, 13, 0)  # a night
    assert support.due_at(local(2026, 12, 11, 13, 30)) == local(2026, 12, 11, 17, 30)  # exactly at closing
    assert support.due_at(local(2026, 12, 24, 16, 0)) == local(2026, 12, 28, 11, 30)  # over Christmas


def test_due_at_with_no_sla_is_the_next_opening_and_a_negative_one_is_refused(support):
    assert support.due_at(local(2026, 12, 6, 12, 0), 0) == local(2026, 12, 7, 9, 0)
    assert support.due_at(local(2026, 12, 7, 12, 0), 0) == local(2026, 12, 7, 12, 0)
    assert support.due_at(local(2026, 12, 7, 12, 0), 1.5) == local(2026, 12, 7, 13, 30)
    with pytest.raises(ValueError, match="negative"):
        support.due_at(local(2026, 12, 7, 12, 0), -1)


def test_a_long_sla_spans_several_weeks():
    mondays = queue(hours={"mon": "09:00-10:00"})
    assert mondays.due_at(local(2026, 12, 7, 9, 0), 3) == local(2026, 12, 21, 10, 0)


# -- what the customer reads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, en, nl",
    [
        (local(2026, 12, 7, 7, 0), "today at 09:00", "vandaag om 09:00"),
        (local(2026, 12, 4, 18, 0), "tomorrow at 10:00", "morgen om 10:00"),
        (local(2026, 12, 4, 23, 59), "tomorrow at 10:00", "morgen om 10:00"),
        (local(2026, 12, 5, 0, 1), "today at 10:00", "vandaag om 10:00"),
        (local(2026, 12, 5, 17, 0), "on Monday 7 December at 09:00", "maandag 7 december om 09:00"),
        (local(2026, 12, 24, 18, 0), "on Monday 28 December at 09:00", "maandag 28 december om 09:00"),
        (local(2026, 12, 31, 18, 0), "on Saturday 2 January at 10:00", "zaterdag 2 januari om 10:00"),
        # the local date counts: Sunday 23:30 UTC is already Monday in Amsterdam
        (datetime(2026, 12, 6, 23, 30, tzinfo=UTC), "today at 09:00", "vandaag om 09:00"),
        (datetime(2026, 12, 6, 22, 30, tzinfo=UTC), "tomorrow at 09:00", "morgen om 09:00"),
    ],
)
def test_opens_phrase_in_both_languages(support, moment, en, nl):
    assert support.opens_phrase(moment, "en") == en
    assert support.opens_phrase(moment, "nl") == nl


def test_opens_phrase_of_a_later_moment_counts_days_from_since(support):
    friday = local(2026, 12, 4, 17, 0)
    due = support.due_at(friday)
    assert support.opens_phrase(due, "en") == "today at 13:30"
    assert support.opens_phrase(due, "en", since=friday) == "tomorrow at 13:30"
    assert support.opens_phrase(local(2026, 12, 8, 11, 0), "nl", since=friday) == "dinsdag 8 december om 11:00"


def test_other_languages_fall_back_to_english(support):
    moment = local(2026, 12, 7, 7, 0)
    assert support.opens_phrase(moment, "de") == "today at 09:00"
    assert support.opens_phrase(moment, None) == "today at 09:00"
    assert support.opens_phrase(moment, "nl-NL") == "vandaag om 09:00"
    assert support.display_name("fr") == "customer service"
    assert support.closed_message(moment, "de").startswith("Our customer service team")


def test_closed_message_fills_only_name_and_opens():
    odd = queue(closed_text={"en": "{name} {opens} {team} {{literal}}"})
    message = odd.closed_message(local(2026, 12, 7, 7, 0), "nl")  # no nl text: English, Dutch name
    assert message == "testteam vandaag om 09:00 {team} {literal}"


def test_a_queue_without_hours_is_always_open():
    anytime = QueueHours.always_open("billing")
    for moment in (local(2026, 12, 6, 3, 0), local(2026, 12, 25, 12, 0), local(2026, 3, 29, 3, 30)):
        assert anytime.is_open(moment)
        assert anytime.next_opening(moment) == moment
    assert anytime.due_at(local(2026, 12, 6, 3, 0)) == local(2026, 12, 6, 7, 0)
    assert anytime.display_name("nl") == "billing"
    rules = parse_rules({"version": 1, "triggers": {"x": {"reason": "urgent", "priority": "urgent", "queue": "billing", "reason_text": "t"}}})
    assert rules.queues == {}
    assert rules.queue_hours("billing") == anytime
    assert load_rules().queue_hours("support") is load_rules().queues["support"]


# -- the clock ------------------------------------------------------------------------------------


def test_now_is_the_real_time_without_handoff_now(monkeypatch):
    monkeypatch.delenv("HANDOFF_NOW", raising=False)
    before = datetime.now(UTC)
    moment = hours.now()
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert before <= moment <= datetime.now(UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2026-12-07T10:00:00+01:00", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),
        ("2026-12-07T09:00:00Z", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),
        (" 2026-07-01 12:30+02:00 ", datetime(2026, 7, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_handoff_now_fixes_the_clock(monkeypatch, raw, expected):
    monkeypatch.setenv("HANDOFF_NOW", raw)
    moment = hours.now()
    assert moment == expected and moment.tzinfo == UTC


@pytest.mark.parametrize("raw", ["2026-12-07T10:00:00", "tomorrow", "2026-13-01T10:00:00+01:00"])
def test_handoff_now_must_be_a_time_with_an_offset(monkeypatch, raw):
    monkeypatch.setenv("HANDOFF_NOW", raw)
    with pytest.raises(ClockError, match="HANDOFF_NOW"):
        hours.now()


@pytest.mark.parametrize("environment", ["production", "Production ", "prod"])
def test_handoff_now_is_refused_in_production(monkeypatch, environment):
    monkeypatch.setenv("HANDOFF_ENV", environment)
    monkeypatch.setenv("HANDOFF_NOW", "2026-12-07T10:00:00+01:00")
    with pytest.raises(ClockError, match="HANDOFF_NOW is set .* testing only"):
        hours.now()
    assert issubclass(ClockError, ValueError)
    monkeypatch.delenv("HANDOFF_NOW")
    assert abs(hours.now() - datetime.now(UTC)) < timedelta(seconds=5)


# -- what designers get wrong ---------------------------------------------------------------------


def spec(**overrides):
    base = {
        "name": {"en": "team", "nl": "team"},
        "time_zone": "Europe/Amsterdam",
        "hours": {"mon": "09:00-17:00"},
        "closed_text": {"en": "Closed. {opens}", "nl": "Dicht. {opens}"},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


BAD_QUEUES = [
    (spec(hours={"monday": "09:00-17:00"}), "hours: unknown weekday(s) monday"),
    (spec(hours={"mon": "9-17"}), "hours.mon: '9-17' is not an opening range"),
    (spec(hours={"mon": 600}), "hours.mon: 600 is not an opening range; write \"HH:MM-HH:MM\" in quotes"),
    (spec(hours={"mon": "25:00-26:00"}), "hours.mon: '25:00-26:00' starts at a time that does not exist"),
    (spec(hours={"mon": "09:60-17:00"}), "hours.mon: '09:60-17:00' starts at a time"),
    (spec(hours={"mon": "09:00-24:30"}), "hours.mon: '09:00-24:30' ends at a time that does not exist"),
    (spec(hours={"mon": "17:00-09:00"}), "hours.mon: '17:00-09:00' ends before it starts"),
    (spec(hours={"mon": "09:00-09:00"}), "hours.mon: '09:00-09:00' ends before it starts"),
    (spec(hours={"tue": ["09:00-12:00", "11:00-13:00"]}), "hours.tue: opening ranges overlap"),
    (spec(hours={"wed": []}), "hours.wed: an empty list"),
    (spec(hours={"mon": "closed", "sun": "closed"}), "hours: closed every day"),
    (spec(hours=["09:00-17:00"]), "hours: must map weekdays"),
    (spec(time_zone="Europe/Amsterdm"), "time_zone: 'Europe/Amsterdm' is not a known time zone"),
    (spec(time_zone="CET+1"), "time_zone: 'CET+1' is not a known time zone"),
    (spec(time_zone=1), "time_zone: 1 is not a known time zone"),
    (spec(time_zone=None), "time_zone missing"),
    (spec(hours=None), "hours missing"),
    (spec(name=None), "name missing"),
    (spec(closed_text=None), "closed_text missing"),
    (spec(holidays=["2026-02-30"]), "holidays: '2026-02-30' is not a date"),
    (spec(holidays=["25-12-2026"]), "holidays: '25-12-2026' is not a date"),
    (spec(holidays="2026-12-25"), "holidays: must be a list of dates"),
    (spec(holiday=["2026-12-25"]), "unknown key(s) holiday"),
    (spec(follow_up_sla_hours=-1), "follow_up_sla_hours: must be a number of hours"),
    (spec(follow_up_sla_hours="four"), "follow_up_sla_hours: must be a number of hours"),
    (spec(follow_up_sla_hours=True), "follow_up_sla_hours: must be a number of hours"),
    (spec(closed_text="We are closed"), "closed_text: must map languages to texts"),
    (spec(closed_text={}), "closed_text: must map languages to texts"),
    (spec(closed_text={"english": "Closed"}), "closed_text: 'english' is not a two-letter language code"),
    (spec(closed_text={"en": ""}), "closed_text.en: must be a non-empty text"),
    (spec(closed_text={"en": "Back {opens"}), "closed_text.en: expected '}'"),
    (spec(name={"nl": 3}), "name.nl: must be a non-empty text"),
    ("closed", "must be a mapping"),
]


@pytest.mark.parametrize("queue_spec, message", BAD_QUEUES)
def test_bad_queues_name_the_queue_and_the_key(queue_spec, message):
    with pytest.raises(HoursError) as raised:
        parse_queues({"helpdesk": queue_spec}, "rules.yml")
    assert str(raised.value).startswith("rules.yml: queues: helpdesk: ")
    assert message in str(raised.value)
    rules = {"version": 1, "triggers": {"x": {"reason": "urgent", "priority": "urgent", "queue": "helpdesk", "reason_text": "t"}}}
    with pytest.raises(RulesError, match="queues: helpdesk: "):
        parse_rules({**rules, "queues": {"helpdesk": queue_spec}})


def test_bad_queue_names_and_sections_are_refused():
    with pytest.raises(HoursError, match="queues: Help Desk: a queue name is lower case"):
        parse_queues({"Help Desk": spec()})
    with pytest.raises(HoursError, match="queues: must map queue names"):
        parse_queues(["support"])  # type: ignore[arg-type]
    rules = {"version": 1, "triggers": {"x": {"reason": "urgent", "priority": "urgent", "queue": "q", "reason_text": "t"}}}
    with pytest.raises(RulesError, match="at queues: .* is not of type 'object'"):
        parse_rules({**rules, "queues": ["support"]})


def test_good_yaml_forms_are_accepted():
    parsed = parse_queues(
        {
            "q": spec(
                hours={"mon": " 9:00 - 17:00 ", "tue": "00:00-24:00", "wed": "CLOSED", "thu": ["08:00-10:00", "10:00-12:00"]},
                holidays=[date(2026, 12, 25), "2026-12-26"],  # YAML reads an unquoted date as a date
                follow_up_sla_hours=2.5,
            )
        }
    )["q"]
    assert parsed.hours[:4] == (((540, 1020),), ((0, 1440),), (), ((480, 600), (600, 720)))
    assert parsed.holidays == {date(2026, 12, 25), date(2026, 12, 26)}
    assert parsed.follow_up_sla_hours == 2.5
    assert load_queues({"version": 1}) == {} and parse_queues(None) == {}
    assert set(load_queues({"queues": {"q": spec()}})) == {"q"}


def test_get_queues_rereads_the_rules_file_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "rules.yml"
    base = (
        "version: 1\ntriggers:\n  x: {reason: urgent, priority: urgent, queue: q, reason_text: t}\n"
        "queues:\n  q:\n    name: {en: team, nl: team}\n    time_zone: Europe/Amsterdam\n"
        "    closed_text: {en: '{opens}', nl: '{opens}'}\n"
    )
    path.write_text(base + "    hours: {mon: '09:00-17:00'}\n")
    monkeypatch.setenv("HANDOFF_RULES_PATH", str(path))
    assert get_queues()["q"].hours[0] == ((540, 1020),)
    path.write_text(base + "    hours: {mon: '10:00-17:00'}\n    holidays: [2026-12-25]\n")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert get_queues()["q"].hours[0] == ((600, 1020),)
    assert get_queues(path)["q"].holidays == {date(2026, 12, 25)}
    path.write_text(base + "    hours: {mon: '10:00-9:00'}\n")
    os.utime(path, (stat.st_atime, stat.st_mtime + 10))
    with pytest.raises(RulesError, match="rules.yml: queues: q: hours.mon"):
        get_queues()
