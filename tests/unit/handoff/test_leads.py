import pytest

from handoff.leads import (
    DEFAULT_LEAD_SCORING_CONFIG,
    LeadScore,
    LeadScoringConfig,
    extract_email,
    is_valid_email,
    parse_budget,
    parse_company_size,
    parse_number,
    parse_timeline_months,
    score_lead,
)

# numbers


@pytest.mark.parametrize(
    "raw, value",
    [
        ("50", 50),
        ("50.000", 50000),  # Dutch thousands
        ("50,000", 50000),  # English thousands
        ("1.200", 1200),
        ("1,200", 1200),
        ("1.000.000", 1000000),
        ("1,5", 1.5),  # Dutch decimal comma
        ("1.5", 1.5),
        ("2,50", 2.5),
        ("0,500", 0.5),
        ("1.250,50", 1250.5),
        ("1,250.50", 1250.5),
    ],
)
def test_numbers_with_english_and_dutch_separators(raw, value):
    assert parse_number(raw) == value


@pytest.mark.parametrize("raw", ["1.2.3", "1,2.345,6", "12.34.567"])
def test_numbers_with_nonsense_separators_are_not_read(raw):
    assert parse_number(raw) is None


# company size


@pytest.mark.parametrize(
    "text, size",
    [
        ("50", 50),
        ("about 250 employees", 250),
        ("We are with 35 people", 35),
        ("250 medewerkers", 250),
        ("ongeveer 40 mensen", 40),
        ("1.200", 1200),
        ("1,200", 1200),
        ("1.200 werknemers", 1200),
        ("2k", 2000),
        ("1.5k staff", 1500),
        ("50+", 50),
        ("a dozen", 12),
        ("een dozijn", 12),
        ("five of us", 5),
        ("just me", 1),
        ("Only me, I'm a freelancer", 1),
        ("ik ben zzp'er", 1),
        ("eenmanszaak", 1),
        ("between 10 and 50", 30),
        ("tussen de 10 en 50", 30),
        ("tussen 10 en 50 medewerkers", 30),
        ("10-50", 30),
        ("50 - 200 employees", 125),
        ("20 tot 30 man", 25),
        ("founded in 2010, now 35 employees", 35),
    ],
)
def test_company_size(text, size):
    assert parse_company_size(text) == size


@pytest.mark.parametrize("text", ["", "no idea", "geen idee", "a lot", "0", "100%", "9" * 2000])
def test_company_size_without_a_number_is_none(text):
    assert parse_company_size(text) is None


# budget


@pytest.mark.parametrize(
    "text, amount",
    [
        ("about 50k", 50000),
        ("50K", 50000),
        ("€ 50.000", 50000),
        ("€50.000,-", 50000),
        ("€50,-", 50),
        ("50.000 euro", 50000),
        ("EUR 12,500", 12500),
        ("12.500 EUR", 12500),
        ("€ 1.250,50", 1250.5),
        ("1.5 million", 1500000),
        ("1,5 miljoen", 1500000),
        ("2,5 mln", 2500000),
        ("10 duizend", 10000),
        ("5k per month", 5000),
        ("€7.500 per maand", 7500),
        ("around 7500", 7500),
        ("een ton", 100000),
        ("anderhalve ton", 150000),
        ("3 ton", 300000),
        ("half a million", 500000),
        ("een half miljoen", 500000),
        ("a million", 1000000),
        ("10-20k", 15000),
        ("tussen 10 en 20 duizend", 15000),
        ("between €5.000 and €10.000", 7500),
        ("our 2025 budget is 50k", 50000),
    ],
)
def test_budget_in_euros(text, amount):
    assert parse_budget(text) == amount


@pytest.mark.parametrize("text", ["", "no budget yet", "geen idee", "depends", "20%"])
def test_budget_without_an_amount_is_none(text):
    assert parse_budget(text) is None


# timeline


@pytest.mark.parametrize(
    "text, months",
    [
        ("asap", 0),
        ("ASAP!", 0),
        ("as soon as possible", 0),
        ("zo snel mogelijk", 0),
        ("zsm", 0),
        ("direct", 0),
        ("per direct", 0),
        ("meteen", 0),
        ("next month", 1),
        ("volgende maand", 1),
        ("within 3 months", 3),
        ("binnen 3 maanden", 3),
        ("in about three months", 3),
        ("over drie maanden", 3),
        ("this quarter", 3),
        ("dit kwartaal", 3),
        ("next year", 12),
        ("volgend jaar", 12),
        ("eind dit jaar", 12),
        ("by the end of the year", 12),
        ("2 weeks", 0.5),
        ("2 weken", 0.5),
        ("binnen een maand", 1),
        ("a few weeks", 0.75),
        ("10 dagen", 0.33),
        ("half a year", 6),
        ("een half jaar", 6),
        ("anderhalf jaar", 18),
        ("3-6 months", 4.5),
        ("2 à 3 maanden", 2.5),
        ("tussen 3 en 6 maanden", 4.5),
        ("binnen 1,5 maand", 1.5),
        ("within the next 6 months", 6),
        ("not now, maybe next year", 12),
        ("geen haast, binnen een jaar", 12),
        ("3", 3),
    ],
)
def test_timeline_in_months(text, months):
    assert parse_timeline_months(text) == months


@pytest.mark.parametrize(
    "text",
    [
        "no plans",
        "no rush",
        "just looking",
        "not now",
        "not urgent",
        "geen haast",
        "geen plannen",
        "nog niet",
        "niet direct",
        "even rondkijken",
        "ik ben me aan het oriënteren",
        "",
        "whenever",
    ],
)
def test_no_timeline_is_none(text):
    assert parse_timeline_months(text) is None


# e-mail


@pytest.mark.parametrize(
    "text",
    [
        "jan@example.nl",
        "Jan.de.Vries@Example.NL",
        "jan+shop@mail.example.co.uk",
        "o'brien@example.ie",
        "  jan@example.nl  ",
    ],
)
def test_valid_emails(text):
    assert is_valid_email(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "jan",
        "jan @example.nl",
        "jan@example .nl",
        "jan@example",
        "jan@example.n",
        "jan@@example.nl",
        "@example.nl",
        ".jan@example.nl",
        "jan..de@example.nl",
        "jan@exa_mple.nl",
        "jan@-example.nl",
        "jan@example.nl.",
        "mail me at jan@example.nl",
        "x" * 65 + "@example.nl",
    ],
)
def test_invalid_emails(text):
    assert not is_valid_email(text)


@pytest.mark.parametrize(
    "text, email",
    [
        ("mail me at jan@example.nl.", "jan@example.nl"),
        ("mijn e-mail is <Jan.de.Vries@Example.NL>", "Jan.de.Vries@Example.NL"),
        ("(jan@example.nl)", "jan@example.nl"),
        ("email: jan@example.nl, tel 0612345678", "jan@example.nl"),
        ("jan@example of anders piet@example.nl", "piet@example.nl"),
        ("geen e-mail", None),
        ("x@y", None),
    ],
)
def test_extract_email(text, email):
    assert extract_email(text) == email


# scoring


def test_default_rules_qualify_a_large_company_with_budget():
    result = score_lead(
        {"company_size": "250 medewerkers", "budget": "€ 50.000", "timeline_months": "volgend jaar"}
    )
    assert result == LeadScore(
        score=90,
        qualified=True,
        breakdown={"company_size": 40, "budget": 40, "timeline_months": 10},
        values={"company_size": 250, "budget": 50000, "timeline_months": 12},
    )


def points(company_size=0, budget=0, timeline_months=0):
    return {"company_size": company_size, "budget": budget, "timeline_months": timeline_months}


@pytest.mark.parametrize(
    "answers, breakdown, qualified",
    [
        ({"company_size": 50}, points(company_size=40), False),
        ({"company_size": 49}, points(company_size=20), False),
        ({"company_size": 9}, points(), False),
        ({"budget": "20k", "timeline_months": "asap"}, points(budget=40, timeline_months=20), True),
        ({"budget": "19.999", "timeline_months": 3}, points(budget=20, timeline_months=20), False),
        ({"budget": 4999, "timeline_months": "over 4 maanden"}, points(timeline_months=10), False),
        (
            {
                "company_size": "tussen 10 en 50",
                "budget": "5k a month",
                "timeline_months": "2 weken",
            },
            points(company_size=20, budget=20, timeline_months=20),
            True,
        ),
        (
            {"company_size": "just me", "budget": "1,5 miljoen", "timeline_months": "geen haast"},
            points(budget=40),
            False,
        ),
    ],
)
def test_the_first_matching_band_wins(answers, breakdown, qualified):
    result = score_lead(answers)
    assert result.breakdown == breakdown
    assert result.score == sum(breakdown.values())
    assert result.qualified is qualified


def test_missing_and_unreadable_answers_score_nothing():
    result = score_lead({"company_size": "no idea", "budget": None, "timeline_months": ["soon"]})
    assert result.score == 0 and not result.qualified
    assert result.values == {"company_size": None, "budget": None, "timeline_months": None}


def test_answers_not_in_the_rules_are_ignored():
    assert score_lead({"favourite_colour": "blue"}).score == 0


def test_rules_come_from_config():
    config = LeadScoringConfig.from_dict(
        {
            "qualify_at": 30,
            "company_size": [{"min": 10, "max": 100, "points": 30}, {"min": 101, "points": 10}],
            "budget": [],
        }
    )
    result = score_lead({"company_size": "80", "budget": "1 miljoen"}, config)
    assert result.breakdown == points(company_size=30)
    assert score_lead({"company_size": 80}, config).qualified
    assert not score_lead({"company_size": 5000}, config).qualified
    # Keys that are left out keep their defaults.
    assert score_lead({"timeline_months": "asap"}, config).breakdown["timeline_months"] == 20


def test_default_config_dict_builds_the_default_config():
    default = LeadScoringConfig.from_dict(DEFAULT_LEAD_SCORING_CONFIG)
    assert default == LeadScoringConfig.from_dict({})
    assert LeadScoringConfig.from_dict(None).qualify_at == 60


@pytest.mark.parametrize(
    "data, message",
    [
        ({"qualify_at": "60"}, "qualify_at must be a number"),
        ({"qualify_at": -1}, "qualify_at must be a number of 0 or more"),
        ({"budgets": []}, "unknown key.*'budgets'"),
        ({"budget": {"min": 1, "points": 1}}, "budget must be a list of bands"),
        ({"budget": [5]}, r"budget\[0\] must be a mapping"),
        ({"budget": [{"min": 1}]}, r"budget\[0\]: points must be a whole number, got None"),
        ({"budget": [{"min": 1, "points": "10"}]}, r"points must be a whole number, got '10'"),
        ({"budget": [{"min": 1, "points": 1.5}]}, "points must be a whole number"),
        ({"budget": [{"points": 1}]}, r"budget\[0\] needs min, max or both"),
        (
            {"company_size": [{"min": 50, "points": 1}, {"min": "10", "points": 1}]},
            r"company_size\[1\]: min must be a number",
        ),
        ({"timeline_months": [{"min": 6, "max": 3, "points": 1}]}, r"min \(6\) is above max \(3\)"),
        ({"timeline_months": [{"maximum": 3, "points": 1}]}, "unknown key.*'maximum'"),
    ],
)
def test_invalid_config_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        LeadScoringConfig.from_dict(data)
