"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

A Content-Security-Policy of `default-src 'none'` makes that a promise the browser keeps:
if anything in the page ever tried to fetch a resource or run a script, it would be
blocked and show up as a console error, which the browser test checks for.
"""

from __future__ import annotations

import json
from collections import defaultdict
from html import escape
from typing import Any

from scripts.report import svg
from scripts.report.data import (
    ATTENTION_DAYS,
    LEDGER_DAYS,
    SIZE_DAYS,
    ReportData,
    Section,
    day,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
REASONS = [
    "entered",
    "purchased",
    "unsubscribed",
    "suppressed",
    "window_expired",
    "version_changed",
    "identity_changed",
    "audience_retired",
]

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
  margin:0;background:#f9fafb}
main{max-width:1360px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}
h3{font-size:13px;margin:8px 0 2px;color:#374151}
.meta,.note-text{color:#6b7280;font-size:12px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;
  margin:16px 0}
.attention{border-color:#fca5a5;background:#fef2f2}
.attention.clear{border-color:#86efac;background:#f0fdf4}
.attention li{margin:3px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px 20px}
svg.chart{width:100%;height:auto;display:block;max-width:720px}
svg .grid{stroke:#e5e7eb}svg .zero{stroke:#6b7280;stroke-dasharray:3 3}
svg .series{fill:none;stroke-width:1.6}svg .whisker{stroke-width:2.2}
svg text{font-size:11px;fill:#374151}svg .tick{fill:#6b7280;font-size:10px}
svg .note.flag{fill:#b45309;font-weight:600}
.legend{font-size:12px;color:#374151;margin:2px 0 6px}
.legend .key{margin-right:12px;white-space:nowrap}
.legend i{display:inline-block;width:16px;border-top:3px solid;margin-right:4px;
  vertical-align:middle}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{padding:3px 8px;border-bottom:1px solid #f3f4f6;text-align:right;white-space:nowrap}
th:first-child,td:first-child,th.text,td.text{text-align:left}
td.text{white-space:normal}
.status-ok{color:#047857}.status-bad{color:#b91c1c;font-weight:600}
.flag{color:#b45309;font-weight:600}.empty{color:#6b7280;font-style:italic}
"""


def _missing(section: Section) -> str:
    return (
        f'<p class="empty">No data: {escape(section.missing or "")}. '
        "Run <code>dbt build</code> (or <code>audiences run</code>) first.</p>"
    )


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):,.{digits}f}"


def _percent(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.{digits}f}%"


def _points(value: Any) -> str:
    return "n/a" if value is None else f"{float(value) * 100:+.2f} pp"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _is_true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "t")


# ---------------------------------------------------------------- needs attention
def attention_items(data: ReportData) -> list[str]:
    items = []
    missing = [
        section.table
        for section in (data.sizes, data.lift, data.volumes, data.machine_opens)
        if section.missing
    ]
    if missing:
        items.append(
            "the report cannot show everything: "
            + ", ".join(f"<code>{escape(name)}</code>" for name in missing)
            + " not built yet; run <code>dbt build</code>"
        )
    for failure in data.dbt_failures:
        what = (
            f"data-health check <b>{escape(failure['check'])}</b> failed"
            if failure["check"]
            else f"dbt <b>{escape(failure['name'])}</b> failed"
        )
        look = (
            "dbt test --select tag:data_health --store-failures"
            if failure["check"]
            else failure["rebuild"]
        )
        items.append(
            f"{what} ({escape(failure['name'])}): {escape(failure['message'])}; "
            f"look further: <code>{escape(look)}</code>"
        )
    if data.volumes.rows:
        newest = max(day(r["event_date"]) for r in data.volumes.rows)
        recent = [
            r
            for r in data.volumes.rows
            if _is_true(r["is_anomaly"])
            and _days_between(day(r["event_date"]), newest) < ATTENTION_DAYS
        ]
        for r in recent:
            items.append(
                f"{escape(str(r['metric']))} on {escape(str(r['channel']))}: "
                f"<b>{escape(str(r['anomaly_direction'] or 'anomaly'))}</b> on "
                f"{day(r['event_date'])} ({_number(r['events'])} events vs a median of "
                f"{_number(r['baseline_median'])} on the same weekday)"
            )
    if data.ticks.rows and data.ticks.rows[0]["status"] not in ("ok", "running"):
        tick = data.ticks.rows[0]
        items.append(
            f"the last scheduled run ({escape(str(tick['started_at'])[:16])}) ended "
            f"<b>{escape(str(tick['status']))}</b> (exit {tick['exit_code']}); "
            "see <code>audiences_ops.runs</code>"
        )
    if data.sync_runs.rows and data.sync_runs.rows[0]["status"] != "ok":
        run = data.sync_runs.rows[0]
        first_line = _first_reason(run["error"])
        items.append(
            f"the last Segment sync ({escape(str(run['started_at'])[:16])}) ended "
            f"<b>{escape(str(run['status']))}</b>"
            + (f": {escape(first_line)}" if first_line else "")
            + "; look further: <code>audiences sync segment --dry-run</code>"
        )
    if data.dead_letters.rows:
        total = sum(int(r["messages"]) for r in data.dead_letters.rows)
        keys = ", ".join(escape(str(r["audience_key"])) for r in data.dead_letters.rows)
        items.append(
            f"<b>{total}</b> dead-lettered Segment message(s) ({keys}); fix, then "
            "<code>audiences sync segment --retry-dead-letters</code>"
        )
    if not data.sizes.missing:
        for key, when in empty_audiences(data):
            items.append(f"<b>{escape(key)}</b> has no members {when}")
    return items


def empty_audiences(data: ReportData) -> list[tuple[str, str]]:
    """Audiences with no treatment members on the newest day, and when that is. One
    that never had a member has no size rows at all, so the keys come from
    dim_audiences as well."""
    if not data.sizes.rows:
        return [(key, f"in the last {SIZE_DAYS} days") for key in data.audiences]
    newest = max(day(r["day"]) for r in data.sizes.rows)
    members = _treatment_on(data.sizes.rows, newest)
    keys = sorted(set(members) | set(data.audiences))
    return [(key, f"on {newest}") for key in keys if members.get(key, 0) == 0]


def _first_reason(error: Any) -> str:
    """The first line that says why ("refusing to send:" only introduces the reasons)."""
    lines = [line.strip(" -") for line in str(error or "").splitlines()]
    reasons = [line for line in lines if line and not line.endswith(":")]
    return reasons[0] if reasons else (lines[0] if lines else "")


def _days_between(earlier: str, later: str) -> int:
    from datetime import date

    return (date.fromisoformat(later) - date.fromisoformat(earlier)).days


def _treatment_on(rows: list[dict[str, Any]], on: str) -> dict[str, int]:
    members: dict[str, int] = defaultdict(int)
    for r in rows:
        if day(r["day"]) == on and r["arm"] == "treatment":
            members[str(r["audience_key"])] += int(r["members"] or 0)
    return members


# ---------------------------------------------------------------- sections
def sizes_section(data: ReportData) -> str:
    section = data.sizes
    if section.missing:
        return _missing(section)
    empty = empty_audiences(data)
    note = (
        '<p class="empty">No treatment members '
        + escape(empty[0][1])
        + ": "
        + ", ".join(f"<b>{escape(key)}</b>" for key, _ in empty)
        + "</p>"
        if empty
        else ""
    )
    by_audience: dict[str, dict[str, list[svg.Point]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in section.rows:
        by_audience[str(r["audience_key"])][str(r["arm"])].append(
            svg.Point(day(r["day"]), float(r["members"] or 0))
        )
    charts = []
    for key in sorted(by_audience):
        arms = by_audience[key]
        series = [
            svg.Series(arm, arms[arm])
            for arm in ("treatment", "holdout")
            if arm in arms
        ]
        charts.append(
            f"<div><h3>{escape(key)}</h3>"
            + svg.line_chart(f"sizes:{key}", series, height=150)
            + "</div>"
        )
    if not charts:
        return note or '<p class="empty">No rows yet.</p>'
    return (
        svg.legend(["treatment", "holdout"])
        + f'<div class="grid">{"".join(charts)}</div>'
        + note
    )


def movements_section(section: Section) -> str:
    if section.missing:
        return _missing(section)
    bars: dict[str, dict[str, svg.Bar]] = defaultdict(dict)
    for r in section.rows:
        key, kind = str(r["audience_key"]), str(r["change_type"])
        bar = bars[key].setdefault(kind, svg.Bar(f"{key} · {kind}"))
        bar.segments.append(svg.Segment(str(r["reason"]), float(r["people"])))
    ordered = [
        bars[key][kind]
        for key in sorted(bars)
        for kind in ("entered", "exited")
        if kind in bars[key]
    ]
    drawn = {segment.name for bar in ordered for segment in bar.segments}
    present = [name for name in REASONS if name in drawn]
    return (
        f'<p class="note-text">The ledger\'s last {LEDGER_DAYS} days of changes.</p>'
        + svg.legend(present or REASONS, palette_order=REASONS)
        + svg.bar_chart("movements", ordered, REASONS)
    )


def lift_section(section: Section) -> str:
    if section.missing:
        return _missing(section)
    intervals, rows = [], []
    for r in section.rows:
        label = (
            f"{r['audience_key']} v{r['audience_version']} · {day(r['cohort_week'])}"
        )
        inconclusive = _is_true(r["is_inconclusive"])
        intervals.append(
            svg.Interval(
                label,
                _float(r["absolute_lift"]),
                _float(r["absolute_lift_ci_lower"]),
                _float(r["absolute_lift_ci_upper"]),
                inconclusive,
            )
        )
        verdict = (
            f'<span class="flag">inconclusive</span>: {escape(str(r["inconclusive_reason"] or ""))}'
            if inconclusive
            else "conclusive"
        )
        rows.append(
            "<tr>"
            f"<td>{escape(label)}</td><td>{escape(str(r['conversion_window_days']))} d</td>"
            f"<td>{_number(r['treatment_members'])}</td><td>{_number(r['holdout_members'])}</td>"
            f"<td>{_percent(r['treatment_conversion_rate'])}</td>"
            f"<td>{_percent(r['holdout_conversion_rate'])}</td>"
            f"<td>{_points(r['absolute_lift'])}</td>"
            f"<td>[{_points(r['absolute_lift_ci_lower'])}, "
            f"{_points(r['absolute_lift_ci_upper'])}]</td>"
            f"<td>{_percent(r['relative_lift'])}</td>"
            f"<td>{_points(r['minimum_detectable_effect'])}</td>"
            f'<td class="text">{verdict}</td></tr>'
        )
    if not rows:
        return '<p class="empty">No cohorts yet.</p>'
    return (
        '<p class="note-text">Absolute lift in conversion rate (treatment minus holdout) with '
        "its 95 % interval, per entry week, for each audience's newest version. Hollow grey "
        "points are inconclusive: the interval spans zero, an arm is too small, a "
        "conversion window is still open or the audience has no holdout.</p>"
        + svg.interval_chart("lift", intervals, as_percent=True)
        + "<table><thead><tr><th>audience · cohort week</th><th>window</th>"
        "<th>treatment</th><th>holdout</th><th>treatment conv.</th><th>holdout conv.</th>"
        "<th>abs. lift</th><th>95 % interval</th><th>rel. lift</th><th>MDE</th>"
        '<th class="text">verdict</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def volumes_section(section: Section) -> str:
    if section.missing:
        return _missing(section)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in section.rows:
        grouped[(str(r["channel"]), str(r["metric"]))].append(r)
    charts = []
    for (channel, metric), rows in sorted(grouped.items()):
        events = svg.Series(
            "events",
            [
                svg.Point(
                    day(r["event_date"]),
                    float(r["events"] or 0),
                    str(r["anomaly_direction"] or "anomaly")
                    if _is_true(r["is_anomaly"])
                    else None,
                )
                for r in rows
            ],
        )
        baseline = svg.Series(
            "baseline median",
            [
                svg.Point(day(r["event_date"]), _float(r["baseline_median"]))
                for r in rows
            ],
            dashed=True,
            markers=False,
        )
        anomalies = sum(1 for r in rows if _is_true(r["is_anomaly"]))
        flagged = (
            f' <span class="flag">{anomalies} flagged day(s)</span>'
            if anomalies
            else ""
        )
        charts.append(
            f"<div><h3>{escape(channel)} · {escape(metric)}{flagged}</h3>"
            + svg.line_chart(
                f"volume:{channel}/{metric}", [events, baseline], height=150
            )
            + "</div>"
        )
    return (
        svg.legend(["events", "baseline median"], frozenset({"baseline median"}))
        + '<p class="note-text">Red points: days the data-health volume check flagged '
        "(against the median of the same weekday in the previous weeks).</p>"
        + f'<div class="grid">{"".join(charts)}</div>'
    )


def machine_open_section(section: Section) -> str:
    if section.missing:
        return _missing(section)
    grouped: dict[str, list[svg.Point]] = defaultdict(list)
    for r in section.rows:
        grouped[str(r["channel"])].append(
            svg.Point(day(r["event_date"]), _float(r["machine_open_share"]))
        )
    names = sorted(grouped)
    return (
        svg.legend(names)
        + '<p class="note-text">Share of opens that were machine opens (Apple Mail Privacy '
        "Protection prefetches, proxies). A jump means a mailbox provider changed "
        "something, and open-based audiences move with it.</p>"
        + svg.line_chart(
            "machine-open-share",
            [svg.Series(name, grouped[name]) for name in names],
            y_format=lambda v: f"{v * 100:.0f}%",
            y_max=1.0,
        )
    )


def _status(status: Any) -> str:
    css = "status-ok" if status == "ok" else "status-bad"
    return f'<span class="{css}">{escape(str(status))}</span>'


def sync_section(runs: Section, dead: Section, ticks: Section) -> str:
    parts = ["<h3>Segment sync runs (newest first)</h3>"]
    if runs.missing:
        parts.append('<p class="empty">No real sync has run yet.</p>')
    else:
        parts.append(
            "<table><thead><tr><th>started (UTC)</th><th>status</th><th>exit</th>"
            "<th>planned</th><th>sent</th><th>failed</th><th>dead-lettered</th>"
            '<th class="text">error</th></tr></thead><tbody>'
        )
        for r in runs.rows:
            error = _first_reason(r["error"])
            parts.append(
                f'<tr class="sync-run" data-status="{escape(str(r["status"]))}">'
                f"<td>{escape(str(r['started_at'])[:19])}</td><td>{_status(r['status'])}</td>"
                f"<td>{escape(str(r['exit_code']))}</td><td>{_number(r['count_planned'])}</td>"
                f"<td>{_number(r['count_sent'])}</td><td>{_number(r['count_failed'])}</td>"
                f"<td>{_number(r['count_dead_lettered'])}</td>"
                f'<td class="text">{escape(error[:200])}</td></tr>'
            )
        parts.append("</tbody></table>")
    if dead.rows:
        parts.append(
            "<h3>Dead letters (Segment refused them for good)</h3><table><thead><tr>"
            '<th>audience</th><th>messages</th><th class="text">a reason</th></tr></thead><tbody>'
        )
        for r in dead.rows:
            parts.append(
                f"<tr><td>{escape(str(r['audience_key']))}</td><td>{_number(r['messages'])}</td>"
                f'<td class="text">{escape(str(r["reason"])[:200])}</td></tr>'
            )
        parts.append("</tbody></table>")
    parts.append("<h3>Scheduled runs (<code>audiences run</code>)</h3>")
    if ticks.missing or not ticks.rows:
        parts.append('<p class="empty">No scheduled run recorded yet.</p>')
    else:
        parts.append(
            "<table><thead><tr><th>started (UTC)</th><th>status</th><th>exit</th>"
            '<th class="text">steps</th><th class="text">alerts</th></tr></thead><tbody>'
        )
        for r in ticks.rows:
            steps = ", ".join(
                f"{s['step']} {s['exit_code']}" for s in json.loads(r["steps"] or "[]")
            )
            parts.append(
                f"<tr><td>{escape(str(r['started_at'])[:19])}</td><td>{_status(r['status'])}</td>"
                f'<td>{escape(str(r["exit_code"]))}</td><td class="text">{escape(steps)}</td>'
                f'<td class="text">{escape(str(r["alerts"] or ""))}</td></tr>'
            )
        parts.append("</tbody></table>")
    return "".join(parts)


def render(data: ReportData) -> str:
    items = attention_items(data)
    if items:
        attention = (
            '<section class="attention" id="attention"><h2>Needs attention</h2><ul>'
            + "".join(f'<li class="attention-item">{item}</li>' for item in items)
            + "</ul></section>"
        )
    else:
        attention = (
            '<section class="attention clear" id="attention"><h2>Needs attention</h2>'
            "<p>Nothing: no failed checks, anomalies, refusals or dead letters.</p></section>"
        )
    body = [
        attention,
        _section("sizes", "Audience sizes over time", sizes_section(data)),
        _section(
            "movements",
            "Entries and exits by reason",
            movements_section(data.movements),
        ),
        _section("lift", "Lift against the holdout", lift_section(data.lift)),
        _section("volumes", "Event volumes", volumes_section(data.volumes)),
        _section(
            "machine-opens",
            "Machine-open share",
            machine_open_section(data.machine_opens),
        ),
        _section(
            "syncs",
            "Sync history and failures",
            sync_section(data.sync_runs, data.dead_letters, data.ticks),
        ),
    ]
    generated = data.generated_at.strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Engagement Audiences report</title>"
        f"<style>{STYLE}</style></head><body><main>"
        "<h1>Engagement Audiences</h1>"
        f'<p class="meta">Generated {escape(generated)} from {escape(data.target)}.</p>'
        + "".join(body)
        + "</main></body></html>\n"
    )


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{content}</section>'
