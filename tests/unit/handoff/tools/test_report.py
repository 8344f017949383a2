"""``python -m handoff.tools.report``: the HTML report and the CSV of every figure, and its errors."""

from __future__ import annotations

import csv
import re

import pytest

from handoff.tools import report as tool
from tests.unit.handoff import analytics_data as data


@pytest.fixture(scope="module")
def urls(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("report")
    urls = {name: f"sqlite:///{folder / (name + '.db')}" for name in ("tracker", "handoff", "helpdesk")}
    data.seed(urls["tracker"], urls["handoff"], urls["helpdesk"])
    return urls


def run(urls: dict[str, str], out, *extra: str) -> int:
    return tool.main(
        [
            "--tracker-url", urls["tracker"], "--database-url", urls["handoff"],
            "--helpdesk-database-url", urls["helpdesk"], "--out", str(out), *extra,
        ]
    )


def read_csv(path) -> dict[tuple[str, str], str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["figure", "key", "value"]
    table = {(figure, key): value for figure, key, value in rows[1:]}
    assert len(table) == len(rows) - 1
    return table


def test_writes_the_html_report_and_every_figure_to_the_csv(urls, tmp_path, capsys):
    assert run(urls, tmp_path, "--since", "2026-11-23T12:00", "--until", "2026-11-30T12:00") == 0
    table = read_csv(tmp_path / "report.csv")
    expected = data.EXPECTED_7
    assert table[("period", "since")] == "2026-11-23T12:00:00+00:00"
    assert table[("conversations", "total")] == "5"
    assert table[("handoffs", "total")] == "3"
    assert table[("handoff_rate", "per_100_conversations")] == "60.0"
    for day, (conversations, handoffs) in expected["per_day"].items():
        assert table[("conversations_per_day", day)] == str(conversations)
        assert table[("handoffs_per_day", day)] == str(handoffs)
    assert table[("conversations_per_day", "2026-11-24")] == "0"
    for figure in ("reason", "intent"):
        for key, (handoffs, per_100) in expected[f"by_{figure}"].items():
            assert table[(f"handoff_rate_by_{figure}", key)] == str(per_100)
            assert table[(f"handoffs_by_{figure}", key)] == str(handoffs)
    for key, (handoffs, _conversations, per_100) in expected["by_language"].items():
        assert table[("handoff_rate_by_language", key)] == str(per_100)
        assert table[("handoffs_by_language", key)] == str(handoffs)
    for key, value in expected["offers"].items():
        assert table[("offers", key)] == str(value)
    assert table[("time_to_agent", "p50_seconds")] == "30.0"
    assert table[("time_to_agent", "p95_seconds")] == "30.0"
    assert table[("gave_up", "customer_left")] == "1"
    assert table[("no_agent", "no_agent_timeout")] == "1"
    assert table[("no_agent", "no_agent_available")] == "0"
    assert table[("no_agent", "out_of_hours")] == "0"
    for key, value in expected["follow_ups"].items():
        assert table[("follow_ups", key)] == str(value)
    assert table[("wrap_ups", "total")] == "2"
    assert table[("wrap_ups", "false_handoffs")] == "1"
    assert table[("containment", "percent")] == "40.0"
    assert not [key for key in table if key[0] == "unavailable"]

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Handoff report" in page and "2026-11-23 12:00" in page
    # Self-contained: the plots are embedded, nothing is loaded from elsewhere.
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 6
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<td>Customers who gave up waiting</td><td>1</td>" in page
    out = capsys.readouterr().out
    assert "figures computed in" in out
    assert str(tmp_path / "report.html") in out and str(tmp_path / "report.csv") in out


def test_a_date_alone_as_until_means_the_end_of_that_day(urls, tmp_path):
    assert run(urls, tmp_path, "--since", "2026-11-28", "--until", "2026-11-29", "--no-plots") == 0
    table = read_csv(tmp_path / "report.csv")
    assert table[("period", "until")] == "2026-11-30T00:00:00+00:00"
    assert table[("conversations", "total")] == "4"  # c1, c2 on the 28th; c3, c4 on the 29th
    assert "data:image/png" not in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_missing_database_is_reported_unavailable(urls, tmp_path, capsys):
    missing = dict(urls, tracker=f"sqlite:///{tmp_path / 'no-such.db'}")
    assert run(missing, tmp_path / "out", "--since", "2026-11-23T12:00", "--until", "2026-11-30T12:00") == 0
    assert not (tmp_path / "no-such.db").exists()
    table = read_csv(tmp_path / "out" / "report.csv")
    assert table[("conversations", "total")] == "unavailable"
    assert table[("handoffs", "total")] == "3"
    assert "does not exist" in table[("unavailable", "conversations")]
    assert "tracker store: unavailable" in capsys.readouterr().out
    assert "Unavailable: needs the tracker store" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_an_unreadable_database_is_an_error(urls, tmp_path, capsys):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    assert run(dict(urls, handoff=f"sqlite:///{broken}"), tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert "error: the handoff database at" in err and "cannot be read" in err


def test_nothing_found_is_an_error(tmp_path, capsys):
    nothing = {n: f"sqlite:///{tmp_path / (n + '.db')}" for n in ("tracker", "handoff", "helpdesk")}
    assert run(nothing, tmp_path / "out") == 2
    assert "none of the three databases" in capsys.readouterr().err


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        tool.main(["--since", "yesterday"])
    with pytest.raises(SystemExit):
        tool.main(["--days", "0"])
