"""The handoff report: ``python -m handoff.tools.report`` (``make report``).

Finds the databases as the privacy tool does (the handoff database and the embedded helpdesk's
from the settings, the tracker store from endpoints.yml), computes the figures of
:mod:`handoff.analytics` for a period and writes ``report.html`` (self-contained: the plots are
embedded PNG images) and ``report.csv`` (every figure, long format: figure,key,value) to
``--out`` (default results/report). docs/REPORTS.md says what each figure means.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from handoff import analytics
from handoff.analytics import HANDOFF, HELPDESK, SOURCE_LABELS, TRACKER, Period, Report
from handoff.databases import default_endpoints
from handoff.settings import PROJECT_ROOT, SettingsError, load_settings
from handoff.triggers import RulesError

DEFAULT_OUT = PROJECT_ROOT / "results" / "report"


def _moment(text: str, end_of_day: bool = False) -> datetime:
    """An ISO date or date-time, UTC unless it says otherwise; a date alone as ``--until`` means
    the end of that day."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end_of_day and len(text.strip()) == 10:
        moment += timedelta(days=1)
    return moment


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handoff.tools.report",
        description="Handoff analytics for a period: report.html (with plots) and report.csv.",
    )
    parser.add_argument("--days", type=float, default=analytics.DEFAULT_DAYS, help="the period's length in days (default 30), ending now or at --until")
    parser.add_argument("--since", help="start of the period, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    parser.add_argument("--until", help="end of the period (exclusive; a date alone: the end of that day)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for report.html and report.csv (default results/report)")
    parser.add_argument("--endpoints", default=str(default_endpoints()), help="where the tracker store is configured (default HANDOFF_ENDPOINTS, else endpoints.yml)")
    parser.add_argument("--tracker-url", help="the tracker store's database URL (instead of --endpoints)")
    parser.add_argument("--database-url", help="the handoff database (default HANDOFF_DATABASE_URL)")
    parser.add_argument("--helpdesk-database-url", help="the embedded helpdesk's database (default HELPDESK_DATABASE_URL)")
    parser.add_argument("--no-plots", action="store_true", help="leave the plots out (faster)")
    args = parser.parse_args(argv)
    if not args.days > 0:
        parser.error("--days must be more than 0")
    try:
        args.since_at = _moment(args.since) if args.since else None
        args.until_at = _moment(args.until, end_of_day=True) if args.until else None
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    return args


def write_csv(report: Report, path: Path) -> int:
    rows = report.rows()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["figure", "key", "value"])
        writer.writerows(rows)
    return len(rows)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .muted { color: #666; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.8rem; text-align: left; }
td:not(:first-child) { text-align: right; }
.unavailable { background: #fff4e5; border-left: 4px solid #e8a33d; padding: 0.4rem 0.8rem; }
img { max-width: 100%; display: block; margin: 0.5rem 0 1rem; }
"""


def render_html(report: Report, images: dict[str, bytes]) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Handoff report {e(report.period.label())}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Handoff report</h1>",
        f'<p class="muted">{e(report.period.label())} · made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>',
        "<p class=\"muted\">Sources: "
        + "; ".join(f"{SOURCE_LABELS[n]}: {e(report.sources.get(n, 'unavailable'))}" for n in (TRACKER, HANDOFF, HELPDESK))
        + "</p>",
    ]
    for section in analytics.sections(report):
        parts.append(f'<h2 id="{e(section.key)}">{e(section.title)}</h2>')
        parts.append(f'<p class="muted">{e(section.note)}</p>')
        if section.unavailable:
            parts.append(f'<p class="unavailable">Unavailable: {e(section.unavailable)}</p>')
        image = images.get(section.key)
        if image:
            data = base64.b64encode(image).decode("ascii")
            parts.append(f'<img alt="{e(section.title)}" src="data:image/png;base64,{data}">')
        if section.rows:
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in section.headers) + "</tr></thead><tbody>")
            for row in section.rows:
                parts.append("<tr>" + "".join(f"<td>{e(str(cell))}</td>" for cell in row) + "</tr>")
            parts.append("</tbody></table>")
    if report.unavailable:
        parts.append("<h2>Not available</h2><ul>")
        parts.extend(f"<li>{e(figure)}: {e(why)}</li>" for figure, why in sorted(report.unavailable.items()))
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        period = Period.between(args.since_at, args.until_at, days=args.days)
        settings = load_settings()
        reasons: dict[str, str] = {}
        tracker_url = args.tracker_url
        if tracker_url is None:
            endpoints = Path(args.endpoints)
            tracker_url, why = analytics.find_tracker_url(endpoints if endpoints.is_absolute() else Path.cwd() / endpoints)
            if why:
                reasons[TRACKER] = why
        urls = {
            TRACKER: tracker_url,
            HANDOFF: args.database_url or settings.database_url,
            HELPDESK: args.helpdesk_database_url or settings.helpdesk_database_url,
        }
        sources = analytics.open_sources(urls, reasons)
    except (ValueError, SettingsError, sa.exc.ArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"==> period {period.label()}")
        for name in (TRACKER, HANDOFF, HELPDESK):
            engine = sources.engines.get(name)
            if engine is None:
                print(f"    {SOURCE_LABELS[name]}: unavailable ({sources.missing[name]}): its figures are left out")
                continue
            problem = analytics.readable(engine)
            if problem:
                print(f"error: the {SOURCE_LABELS[name]} at {sources.urls[name]} cannot be read: {problem}", file=sys.stderr)
                return 3
            print(f"    {SOURCE_LABELS[name]}: {sources.urls[name]}")
        if all(engine is None for engine in sources.engines.values()):
            print("error: none of the three databases was found; nothing to report (see --help for their URLs)", file=sys.stderr)
            return 2
        started = time.perf_counter()
        try:
            report = analytics.compute_from(sources, period)
        except sa.exc.SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            print(f"error: a database could not be read: {type(exc).__name__}: {first[0] if first else ''}", file=sys.stderr)
            return 3
        except RulesError as exc:
            print(f"error: handoff_rules.yml names the offers and cannot be read: {exc}", file=sys.stderr)
            return 2
        print(f"==> figures computed in {time.perf_counter() - started:.2f} s")
    finally:
        sources.close()
    for line in analytics.summary_lines(report):
        print(f"    {line}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        images = {} if args.no_plots else analytics.plots(report)
        print(f"==> {len(images)} plots drawn")
        rows = write_csv(report, out / "report.csv")
        (out / "report.html").write_text(render_html(report, images), encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write the report to {out}: {exc}", file=sys.stderr)
        return 4
    print(f"==> {out / 'report.html'}")
    print(f"==> {out / 'report.csv'} ({rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
