"""Inline SVG charts, written here so the report needs no script and no network.

Every drawn data point carries its values as data-* attributes (`data-series`, `data-x`,
`data-y`, ...), so a browser test reads the numbers back from the DOM, and a `<title>`
that the browser shows on hover.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

PALETTE = (
    "#2563eb",
    "#d97706",
    "#059669",
    "#7c3aed",
    "#db2777",
    "#0891b2",
    "#65a30d",
    "#9ca3af",
)
ALERT = "#dc2626"
MUTED = "#9ca3af"
WIDTH = 640
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 12, 28


@dataclass
class Point:
    x: str  # a category on the x axis, usually a YYYY-MM-DD day
    y: float | None
    flag: str | None = None  # e.g. "drop" / "spike": drawn as a marked point


@dataclass
class Series:
    name: str
    points: list[Point]
    dashed: bool = False
    markers: bool = True


@dataclass
class Segment:
    name: str
    value: float


@dataclass
class Bar:
    label: str
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Interval:
    label: str
    estimate: float | None
    lower: float | None
    upper: float | None
    inconclusive: bool
    note: str = ""


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    """Stable text for data-* attributes: integers without a decimal point."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def nice_ceiling(value: float) -> float:
    """The next 1, 2, 2.5 or 5 x 10^n at or above value, for a readable axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def legend(
    names: list[str],
    dashed: frozenset[str] = frozenset(),
    palette_order: list[str] | None = None,
) -> str:
    """Keys for a chart; `palette_order` is the name list the chart coloured by, when the
    legend shows only some of those names."""
    items = []
    for position, name in enumerate(names):
        index = palette_order.index(name) if palette_order else position
        style = "border-top-style:dashed" if name in dashed else ""
        items.append(
            f'<span class="key"><i style="border-color:{color(index)};{style}"></i>'
            f"{escape(name)}</span>"
        )
    return f'<div class="legend">{"".join(items)}</div>'


def count_format(value: float) -> str:
    """Counts with thousands separators; the half-way tick of a small axis keeps its
    fraction (0.5, 2.5), so an axis never reads 0, 0, 1."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def label_width(labels: list[str]) -> int:
    """Room for the longest row label at 11 px (about 6.5 px per character)."""
    return max(120, int(6.5 * max((len(label) for label in labels), default=0)) + 16)


def line_chart(
    chart_id: str,
    series: list[Series],
    *,
    height: int = 180,
    y_format: Callable[[float], str] | None = None,
    y_max: float | None = None,
) -> str:
    xs = sorted({p.x for s in series for p in s.points})
    values = [p.y for s in series for p in s.points if p.y is not None]
    if not xs or not values:
        return '<p class="empty">No data points yet.</p>'
    top = y_max if y_max is not None else nice_ceiling(max(values))
    y_format = y_format or count_format
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    step = plot_w / max(len(xs) - 1, 1)
    position = {x: MARGIN_LEFT + i * step for i, x in enumerate(xs)}

    def y_of(value: float) -> float:
        return MARGIN_TOP + plot_h * (1 - min(value, top) / top)

    parts = [
        f'<svg class="chart line" data-chart="{_attr(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{_attr(chart_id)}">'
    ]
    for fraction in (0, 0.5, 1):
        y = y_of(top * fraction)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(y_format(top * fraction))}</text>'
        )
    for x in (xs[0], xs[len(xs) // 2], xs[-1]) if len(xs) > 2 else xs:
        anchor = "start" if x == xs[0] else "end" if x == xs[-1] else "middle"
        parts.append(
            f'<text class="tick" x="{position[x]:.1f}" y="{height - 8}" '
            f'text-anchor="{anchor}">{escape(x)}</text>'
        )
    for index, s in enumerate(series):
        stroke = color(index)
        runs: list[list[str]] = [[]]
        for p in s.points:
            if p.y is None:
                runs.append([])
            else:
                runs[-1].append(f"{position[p.x]:.1f},{y_of(p.y):.1f}")
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline class="series" data-series="{_attr(s.name)}" '
                    f'points="{" ".join(run)}" stroke="{stroke}"{dash}/>'
                )
        for p in s.points:
            if p.y is None or not (s.markers or p.flag):
                continue
            marked = p.flag is not None
            parts.append(
                f'<circle class="point{" flagged" if marked else ""}" '
                f'data-series="{_attr(s.name)}" data-x="{_attr(p.x)}" '
                f'data-y="{_number(p.y)}"'
                + (f' data-flag="{_attr(p.flag)}"' if marked else "")
                + f' cx="{position[p.x]:.1f}" cy="{y_of(p.y):.1f}" '
                f'r="{4.5 if marked else 2}" fill="{ALERT if marked else stroke}">'
                f"<title>{escape(s.name)} {escape(p.x)}: {escape(y_format(p.y))}"
                f"{' (' + escape(p.flag or '') + ')' if marked else ''}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(chart_id: str, bars: list[Bar], segment_names: list[str]) -> str:
    """Horizontal stacked bars, one row per label, segments coloured by name."""
    totals = [sum(seg.value for seg in bar.segments) for bar in bars]
    if not bars or not any(totals):
        return '<p class="empty">No data points yet.</p>'
    top = nice_ceiling(max(totals))
    label_w, row_h, plot_w = label_width([bar.label for bar in bars]), 24, 420
    width, height = label_w + plot_w + 60, row_h * len(bars) + 8
    parts = [
        f'<svg class="chart bars" data-chart="{_attr(chart_id)}" '
        f'viewBox="0 0 {width} {height}" style="max-width:{width}px" role="img" '
        f'aria-label="{_attr(chart_id)}">'
    ]
    for row, (bar, total) in enumerate(zip(bars, totals, strict=True)):
        y = 4 + row * row_h
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(bar.label)}</text>"
        )
        x = float(label_w)
        for seg in bar.segments:
            bar_width = plot_w * seg.value / top
            index = segment_names.index(seg.name) if seg.name in segment_names else 7
            parts.append(
                f'<rect class="bar" data-row="{_attr(bar.label)}" '
                f'data-segment="{_attr(seg.name)}" data-value="{_number(seg.value)}" '
                f'x="{x:.1f}" y="{y + 3}" width="{bar_width:.1f}" height="{row_h - 8}" '
                f'fill="{color(index)}"><title>{escape(bar.label)}, {escape(seg.name)}: '
                f"{_number(seg.value)}</title></rect>"
            )
            x += bar_width
        parts.append(
            f'<text class="tick" x="{x + 6:.1f}" y="{y + 15}">{_number(total)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(chart_id: str, rows: list[Interval], *, as_percent: bool) -> str:
    """A forest plot: each estimate with its 95 % interval, zero marked; inconclusive
    rows drawn hollow and grey so they cannot be mistaken for a result."""
    drawn = [r for r in rows if r.estimate is not None]
    if not drawn:
        return '<p class="empty">No lift estimates yet.</p>'
    bounds = [
        abs(v)
        for r in drawn
        for v in (r.estimate, r.lower, r.upper)
        if v is not None and math.isfinite(v)
    ]
    span = nice_ceiling(max(bounds) or 0.01)
    label_w, row_h, right = label_width([r.label for r in rows]), 22, 110
    plot_w = 360
    width, height = label_w + plot_w + right, row_h * len(rows) + 30

    def x_of(value: float) -> float:
        value = max(-span, min(span, value))
        return label_w + plot_w * (value + span) / (2 * span)

    def fmt(value: float) -> str:
        return f"{value * 100:+.1f} pp" if as_percent else f"{value:+.3g}"

    zero = x_of(0)
    parts = [
        f'<svg class="chart intervals" data-chart="{_attr(chart_id)}" '
        f'viewBox="0 0 {width} {height}" style="max-width:{width}px" role="img" '
        f'aria-label="{_attr(chart_id)}">',
        f'<line class="zero" x1="{zero:.1f}" x2="{zero:.1f}" y1="0" '
        f'y2="{height - 22}"/>',
    ]
    for value in (-span, 0, span):
        parts.append(
            f'<text class="tick" x="{x_of(value):.1f}" y="{height - 6}" '
            f'text-anchor="middle">{escape(fmt(value))}</text>'
        )
    for row, r in enumerate(rows):
        y = 12 + row * row_h
        paint = MUTED if r.inconclusive else color(2)
        parts.append(
            f'<g class="interval{" inconclusive" if r.inconclusive else ""}" '
            f'data-label="{_attr(r.label)}" '
            f'data-estimate="{"" if r.estimate is None else _number(r.estimate)}" '
            f'data-lower="{"" if r.lower is None else _number(r.lower)}" '
            f'data-upper="{"" if r.upper is None else _number(r.upper)}" '
            f'data-inconclusive="{"true" if r.inconclusive else "false"}">'
            f'<text class="label" x="{label_w - 8}" y="{y + 4}" text-anchor="end">'
            f"{escape(r.label)}</text>"
        )
        if r.lower is not None and r.upper is not None:
            parts.append(
                f'<line class="whisker" x1="{x_of(r.lower):.1f}" '
                f'x2="{x_of(r.upper):.1f}" y1="{y}" y2="{y}" stroke="{paint}"/>'
            )
        if r.estimate is not None:
            fill = "#fff" if r.inconclusive else paint
            parts.append(
                f'<circle cx="{x_of(r.estimate):.1f}" cy="{y}" r="4.5" fill="{fill}" '
                f'stroke="{paint}" stroke-width="2"><title>{escape(r.label)}: '
                f"{escape(fmt(r.estimate))}"
                + (
                    f" [{escape(fmt(r.lower))}, {escape(fmt(r.upper))}]"
                    if r.lower is not None and r.upper is not None
                    else ""
                )
                + "</title></circle>"
            )
        note = "inconclusive" if r.inconclusive else (r.note or "")
        parts.append(
            f'<text class="note{" flag" if r.inconclusive else ""}" '
            f'x="{label_w + plot_w + 8}" y="{y + 4}">{escape(note)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
