"""The charts of the HTML report, drawn as inline SVG (no script, no network), and the helpers
that escape and format what they show. :mod:`tasksync.report_html` lays them out on the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = [
    "HALF",
    "NONE_COLOR",
    "SEGMENT_COLORS",
    "TIER_COLORS",
    "WIDE",
    "esc",
    "heatmap",
    "money",
    "num",
    "paired_bars",
    "simple_bars",
    "stacked_bars",
    "tier_chart",
]

WIDE = 1000  # SVG view box width of a full-width chart (about 1:1 on a laptop)
HALF = 540  # ... of a chart in a half-width column
LABEL = 130  # left column for rep names
RIGHT = 90  # right column for values

SEGMENT_COLORS = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]
TIER_COLORS = ["#c0392b", "#e67e22", "#f1c40f", "#7fb3d5", "#5d6d7e", "#aab7b8"]
NONE_COLOR = "#d5d8dc"
LIGHT = {NONE_COLOR, "#edc948", "#f1c40f", "#bab0ac", "#ff9da7", "#76b7b2", "#7fb3d5", "#aab7b8"}


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def num(value: float) -> str:
    return f"{value:,.0f}"


def money(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"


def svg(w: int, height: float, body: str, label: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{esc(label)}" viewBox="0 0 {w} {height:.0f}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(label)}</title>{body}</svg>"
    )


def axis(w: int, scale: float, top: float, bottom: float, fmt: Callable[[float], str]) -> str:
    """Vertical grid lines with tick labels at round values."""
    if scale <= 0:
        return ""
    plot = w - LABEL - RIGHT
    raw = scale / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), raw)
    out = []
    v = 0.0
    while v <= scale + 1e-9:
        x = LABEL + v / scale * plot
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top:.0f}" y2="{bottom:.0f}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 12:.0f}" text-anchor="middle">{esc(fmt(v))}</text>')
        v += step
    return "".join(out)


def band_rect(w: int, band: Mapping[str, float], scale: float, top: float, bottom: float, label: str) -> str:
    plot = w - LABEL - RIGHT
    x0 = LABEL + band["lower"] / scale * plot
    x1 = LABEL + min(band["upper"], scale) / scale * plot
    xm = LABEL + band["mean"] / scale * plot
    return (
        f'<rect class="band" x="{x0:.1f}" y="{top:.0f}" width="{max(x1 - x0, 1):.1f}" height="{bottom - top:.0f}">'
        f"<title>{esc(label)}</title></rect>"
        f'<line class="mean" x1="{xm:.1f}" x2="{xm:.1f}" y1="{top:.0f}" y2="{bottom:.0f}"/>'
    )


def paired_bars(
    w: int,
    reps: Sequence[Mapping[str, Any]],
    before_key: str | None,
    after_key: str,
    fmt: Callable[[float], str],
    label: str,
    band: Mapping[str, float] | None,
    band_label: str,
    right: Callable[[Mapping[str, Any]], str] | None = None,
) -> str:
    """Per rep a thin grey 'before' bar over a coloured 'after' bar, the band shaded behind.

    Without ``before_key`` (a report, not a plan) one bar per rep."""
    row_h, top = (30, 22) if before_key else (24, 22)
    plot = w - LABEL - RIGHT
    keys = (before_key, after_key) if before_key else (after_key,)
    values = [float(r[k]) for r in reps for k in keys]
    scale = max([*values, band["upper"] if band else 0.0, 1.0]) * 1.05
    bottom = top + row_h * len(reps)
    body = []
    lx = LABEL
    if before_key:
        body.append(
            f'<rect class="legend-before" x="{lx}" y="4" width="12" height="8"/>'
            f'<text class="legend" x="{lx + 16}" y="12">before</text>'
            f'<rect class="bar after in" x="{lx + 70}" y="4" width="12" height="8"/>'
            f'<text class="legend" x="{lx + 86}" y="12">after</text>'
        )
        lx += 130
    if band:
        body.append(
            f'<rect class="band" x="{lx}" y="4" width="12" height="8"/>'
            f'<text class="legend" x="{lx + 16}" y="12">{esc(band_label)}</text>'
        )
    body.append(axis(w, scale, top, bottom, fmt))
    if band:
        body.append(band_rect(w, band, scale, top, bottom, band_label))
    for i, r in enumerate(reps):
        y = top + i * row_h
        a = float(r[after_key])
        if not r["available"]:
            cls = "away"
        elif band is None or band["lower"] - 0.5 <= a <= band["upper"] + 0.5:
            cls = "in"
        else:
            cls = "out"
        name = r["name"] + ("" if r["available"] else " (away)")
        off = 0 if before_key else -6  # one bar: centred in its shorter row
        body.append(f'<text class="name" x="{LABEL - 6}" y="{y + 18 + off}" text-anchor="end">{esc(name)}</text>')
        wa = a / scale * plot
        if before_key:
            b = float(r[before_key])
            body.append(
                f'<rect class="bar before" x="{LABEL}" y="{y + 4}" width="{b / scale * plot:.1f}" height="7">'
                f"<title>{esc(r['name'])} before: {esc(fmt(b))}</title></rect>"
            )
        body.append(
            f'<rect class="bar after {cls}" x="{LABEL}" y="{y + 12 + off}" width="{wa:.1f}" height="13">'
            f"<title>{esc(r['name'])}{' after' if before_key else ''}: {esc(fmt(a))}</title></rect>"
        )
        body.append(
            f'<text class="val" x="{LABEL + wa + 4:.1f}" y="{y + 23 + off}">{esc(fmt(a))}</text>'
            if wa < plot - 40
            else f'<text class="val inside" x="{LABEL + wa - 4:.1f}" y="{y + 23 + off}" '
            f'text-anchor="end">{esc(fmt(a))}</text>'
        )
        if right is not None:
            body.append(f'<text class="right" x="{w - 4}" y="{y + 20 + off}" text-anchor="end">{right(r)}</text>')
    return svg(w, bottom + 18, "".join(body), label)


def stacked_bars(
    w: int,
    reps: Sequence[Mapping[str, Any]],
    key: str,
    order: Sequence[str],
    colors: Mapping[str, str],
    label: str,
) -> str:
    """Per rep one bar split by category (segments, priority tiers)."""
    row_h, top = 22, 8
    plot = w - LABEL - RIGHT
    per_row = max(1, (w - LABEL) // 100)
    legend_rows = (len(order) + per_row - 1) // per_row
    totals = [sum(r[key].values()) for r in reps]
    scale = max([*totals, 1]) * 1.02
    body = []
    for i, r in enumerate(reps):
        y = top + i * row_h
        name = r["name"] + ("" if r["available"] else " (away)")
        body.append(f'<text class="name" x="{LABEL - 6}" y="{y + 15}" text-anchor="end">{esc(name)}</text>')
        x = float(LABEL)
        for cat in order:
            n = r[key].get(cat, 0)
            if not n:
                continue
            bw = n / scale * plot
            body.append(
                f'<rect class="bar seg" x="{x:.1f}" y="{y + 3}" width="{bw:.1f}" height="15" fill="{colors[cat]}">'
                f"<title>{esc(r['name'])}: {esc(cat)} {n}</title></rect>"
            )
            if bw >= 18:
                ink = "inbar dark" if colors[cat] in LIGHT else "inbar"
                body.append(f'<text class="{ink}" x="{x + bw / 2:.1f}" y="{y + 14}" text-anchor="middle">{n}</text>')
            x += bw
        body.append(f'<text class="val" x="{x + 4:.1f}" y="{y + 15}">{sum(r[key].values())}</text>')
    ly = top + row_h * len(reps) + 10
    for j, cat in enumerate(order):
        lx = LABEL + (j % per_row) * 100
        yy = ly + (j // per_row) * 16
        body.append(
            f'<rect x="{lx}" y="{yy}" width="10" height="10" fill="{colors[cat]}"/>'
            f'<text class="legend" x="{lx + 14}" y="{yy + 9}">{esc(cat[:14])}</text>'
        )
    return svg(w, ly + legend_rows * 16 + 4, "".join(body), label)


def simple_bars(
    w: int,
    reps: Sequence[Mapping[str, Any]],
    values: Sequence[float | None],
    fmt: Callable[[float], str],
    label: str,
    cls: str,
) -> str:
    row_h, top = 22, 6
    plot = w - LABEL - RIGHT
    scale = max([v for v in values if v is not None] + [1e-9]) * 1.05
    bottom = top + row_h * len(reps)
    body = [axis(w, scale, top, bottom, fmt)]
    for i, (r, v) in enumerate(zip(reps, values, strict=True)):
        y = top + i * row_h
        name = r["name"] + ("" if r["available"] else " (away)")
        body.append(f'<text class="name" x="{LABEL - 6}" y="{y + 15}" text-anchor="end">{esc(name)}</text>')
        if v is None:
            body.append(f'<text class="val" x="{LABEL + 4}" y="{y + 15}">no closed deals</text>')
            continue
        bw = v / scale * plot
        body.append(
            f'<rect class="bar {cls}" x="{LABEL}" y="{y + 3}" width="{bw:.1f}" height="15">'
            f"<title>{esc(r['name'])}: {esc(fmt(v))}</title></rect>"
            f'<text class="val" x="{LABEL + bw + 4:.1f}" y="{y + 15}">{esc(fmt(v))}</text>'
        )
    return svg(w, bottom + 18, "".join(body), label)


def tier_chart(w: int, prios: Mapping[str, Any], paired: bool = True) -> str:
    """Open cards per priority tier, before and after as vertical bar pairs (``paired``), or now."""
    tiers = [t for t in prios["tiers"] if prios["before"].get(t) or prios["after"].get(t)]
    h, top, base = 200, 16, 170
    scale = max([*prios["before"].values(), *prios["after"].values(), 1]) * 1.1
    slot = (w - 80) / max(len(tiers), 1)
    body = [f'<line class="grid" x1="40" x2="{w - 20}" y1="{base}" y2="{base}"/>']
    if paired:
        body.append(
            '<rect class="legend-before" x="60" y="2" width="12" height="8"/>'
            '<text class="legend" x="76" y="10">before</text>'
            '<rect class="bar tier-after" x="130" y="2" width="12" height="8"/>'
            '<text class="legend" x="146" y="10">after</text>'
        )
    series = (("before", "legend-before"), ("after", "bar tier-after")) if paired else (("after", "bar tier-after"),)
    for i, t in enumerate(tiers):
        x = 50 + i * slot
        bw = min(40.0, slot / 3)
        for j, (key, cls) in enumerate(series):
            n = prios[key].get(t, 0)
            bh = n / scale * (base - top)
            bx = x + slot / 2 - bw * len(series) / 2 + j * bw
            body.append(
                f'<rect class="{cls}" x="{bx:.1f}" y="{base - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}">'
                f"<title>{esc(t)} {key}: {n}</title></rect>"
                f'<text class="tick" x="{bx + bw / 2 - 1:.1f}" y="{base - bh - 3:.1f}" text-anchor="middle">{n}</text>'
            )
        body.append(f'<text class="name" x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle">{esc(t)}</text>')
    return svg(w, h, "".join(body), "Open cards per priority tier" + (", before and after" if paired else ""))


def heatmap(w: int, reps: Sequence[Mapping[str, Any]], months: Sequence[str]) -> str:
    """Won value per rep and month: one shaded cell each, the value written in it."""
    row_h, top = 22, 18
    cell = (w - LABEL - 70) / max(len(months), 1)
    top_v = max([r["won_by_month"].get(m, 0.0) for r in reps for m in months] + [1.0])
    body = [
        f'<text class="tick" x="{LABEL + (k + 0.5) * cell:.1f}" y="12" text-anchor="middle">{esc(m)}</text>'
        for k, m in enumerate(months)
    ]
    body.append(f'<text class="tick" x="{w - 34}" y="12" text-anchor="middle">total</text>')
    for i, r in enumerate(reps):
        y = top + i * row_h
        name = r["name"] + ("" if r["available"] else " (away)")
        body.append(f'<text class="name" x="{LABEL - 6}" y="{y + 15}" text-anchor="end">{esc(name)}</text>')
        total = 0.0
        for k, m in enumerate(months):
            v = float(r["won_by_month"].get(m, 0.0))
            total += v
            alpha = 0.08 + 0.85 * (v / top_v) if v else 0.0
            x = LABEL + k * cell
            body.append(
                f'<rect class="cell" x="{x + 1:.1f}" y="{y + 1}" width="{cell - 2:.1f}" height="{row_h - 2}" '
                f'fill="rgba(39,110,170,{alpha:.2f})"><title>{esc(r["name"])} {esc(m)}: {esc(num(v))}</title></rect>'
                f'<text class="{"inbar" if alpha > 0.5 else "cellv"}" x="{x + cell / 2:.1f}" y="{y + 15}" '
                f'text-anchor="middle">{esc(money(v)) if v else "–"}</text>'
            )
        body.append(f'<text class="val" x="{w - 4}" y="{y + 15}" text-anchor="end">{esc(money(total))}</text>')
    return svg(w, top + row_h * len(reps) + 6, "".join(body), "Won value per rep and month")
