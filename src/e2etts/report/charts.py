"""Inline SVG charts of the report: horizontal bars with whiskers, lines against step.

Pure functions: values in, one ``<svg>`` element out (no file, no state). The result is
``markupsafe.Markup`` because every text in it is already escaped here, so the template
inserts it as is. An empty Markup means nothing to draw.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from markupsafe import Markup

PALETTE = [
    "#4269d0",
    "#efb118",
    "#ff725c",
    "#6cc5b0",
    "#3ca951",
    "#ff8ab7",
    "#a463f2",
    "#97bbf5",
    "#9c6b4e",
]
GREY = "#b8b8b8"


def _esc(x) -> str:
    # The same escaping as the template's (report/html.py), so the page spells entities alike.
    return html.escape(str(x), quote=True)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """About ``target`` round tick values (steps 1, 2, 2.5 or 5 times a power of ten) from at
    or below lo to at or above hi."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    # First tick at or below lo, last at or above hi: the ticks span every value.
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: ``value`` and its interval ``ci`` (lo, hi) in data units,
    ``label`` the text written after the bar, ``grey`` to draw it without a palette colour."""

    name: str
    value: float
    ci: tuple[float, float]
    label: str
    grey: bool = False


def bar_chart(bars: Sequence[Bar], title: str, as_percent: bool) -> Markup:
    """Horizontal bars from 0 to each value, with the interval as a whisker, one row per
    bar (top to bottom); the axis starts at 0 or below and ticks read as percent when
    ``as_percent`` (values are fractions then)."""
    if not bars:
        return Markup("")
    values = [b.value for b in bars]
    lo = min(0.0, *values, *(b.ci[0] for b in bars))
    hi = max(*values, *(b.ci[1] for b in bars), 1e-9)
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    left, right, top, row_h = 150, 70, 34, 26
    width = 560
    plot_w = width - left - right
    height = top + row_h * len(bars) + 30

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">{_esc(title)}</text>',
    ]
    axis_y = top + row_h * len(bars)
    for t in ticks:
        x = x_of(t)
        label = f"{100 * t:g}%" if as_percent else f"{t:g}"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{axis_y}" stroke="#e5e5e5"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" font-size="10">{label}</text>'
        )
    for i, bar in enumerate(bars):
        y = top + i * row_h
        colour = GREY if bar.grey else PALETTE[i % len(PALETTE)]
        x0, x1 = x_of(min(0.0, bar.value)), x_of(max(0.0, bar.value))
        mid = y + row_h / 2
        wl, wh = x_of(bar.ci[0]), x_of(bar.ci[1])
        out.append(
            f'<text x="{left - 6}" y="{mid + 4:.1f}" text-anchor="end" font-size="12">{_esc(bar.name)}</text>'
        )
        out.append(
            f'<rect x="{x0:.1f}" y="{y + 5}" width="{max(x1 - x0, 0.5):.1f}" height="{row_h - 10}" fill="{colour}"/>'
        )
        out.append(
            f'<line x1="{wl:.1f}" x2="{wh:.1f}" y1="{mid}" y2="{mid}" stroke="#222" stroke-width="1.2"/>'
        )
        for wx in (wl, wh):
            out.append(
                f'<line x1="{wx:.1f}" x2="{wx:.1f}" y1="{mid - 6}" y2="{mid + 6}" stroke="#222" stroke-width="1.2"/>'
            )
        out.append(
            f'<text x="{max(wh, x1) + 5:.1f}" y="{mid + 4}" font-size="11">{_esc(bar.label)}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#444"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))


def line_chart(
    curve: pd.DataFrame, title: str, columns: list[str], width: int = 370, height: int = 230
) -> Markup:
    """Lines of ``columns`` against the ``step`` column, one colour each, with a legend
    giving each column's last value. NaN points are skipped, so a dev metric logged every N
    steps still draws a line through its points; a column with one point is a dot."""
    if "step" not in curve.columns or not columns:
        return Markup("")
    steps = pd.to_numeric(curve["step"], errors="coerce").to_numpy(float)
    series = {}
    for col in columns:
        ys = pd.to_numeric(curve[col], errors="coerce").to_numpy(float)
        ok = np.isfinite(ys) & np.isfinite(steps)
        if ok.any():
            series[col] = (steps[ok], ys[ok])
    if not series:
        return Markup("")
    xs_all = np.concatenate([s[0] for s in series.values()])
    ys_all = np.concatenate([s[1] for s in series.values()])
    x_lo, x_hi = float(xs_all.min()), float(xs_all.max())
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    y_ticks = nice_ticks(float(ys_all.min()), float(ys_all.max()), 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    # Room under the plot for the step axis and a two-column legend.
    left, right, top, bottom = 46, 12, 24, 40 + 14 * ((len(series) + 1) // 2)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + plot_w * (x - x_lo) / (x_hi - x_lo)

    def py(y: float) -> float:
        return top + plot_h * (1 - (y - y_lo) / (y_hi - y_lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12" font-weight="600">{_esc(title)}</text>',
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{left - 4}" y="{py(t) + 3:.1f}" text-anchor="end" font-size="9">{t:g}</text>'
        )
    for t in nice_ticks(x_lo, x_hi, 4):
        if x_lo <= t <= x_hi:
            out.append(
                f'<text x="{px(t):.1f}" y="{top + plot_h + 12}" text-anchor="middle" font-size="9">{t:g}</text>'
            )
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    out.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 24}" text-anchor="middle" font-size="9">step</text>'
    )
    for i, (col, (xs, ys)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        if len(xs) > 1:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{pts}"/>'
            )
        else:
            out.append(f'<circle cx="{px(xs[0]):.1f}" cy="{py(ys[0]):.1f}" r="3" fill="{colour}"/>')
        lx = left + (i % 2) * (plot_w / 2)
        ly = top + plot_h + 36 + 14 * (i // 2)
        out.append(f'<rect x="{lx:.1f}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>')
        out.append(
            f'<text x="{lx + 13:.1f}" y="{ly - 4}" font-size="9">{_esc(col)} (last {ys[-1]:.3g})</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
