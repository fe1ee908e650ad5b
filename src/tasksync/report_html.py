"""A self-contained HTML report built from the data of :func:`tasksync.render.plan_json` / ``report_json``.

One file, no network: inline CSS, charts drawn here as inline SVG, a little inline JS to filter
the list of changes. Every text from boards and CRMs is escaped. The data itself is embedded as
JSON (``<script type="application/json" id="tasksync-data">``), equal to ``--json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["embedded_data", "render_html", "write_html"]

_WIDE = 1000  # SVG view box width of a full-width chart (about 1:1 on a laptop)
_HALF = 540  # ... of a chart in a half-width column
_LABEL = 130  # left column for rep names
_RIGHT = 90  # right column for values

_SEGMENT_COLORS = [
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
_TIER_COLORS = ["#c0392b", "#e67e22", "#f1c40f", "#7fb3d5", "#5d6d7e", "#aab7b8"]
_NONE_COLOR = "#d5d8dc"
_LIGHT = {_NONE_COLOR, "#edc948", "#f1c40f", "#bab0ac", "#ff9da7", "#76b7b2", "#7fb3d5", "#aab7b8"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _money(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"


def _svg(w: int, height: float, body: str, label: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{_e(label)}" viewBox="0 0 {w} {height:.0f}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(label)}</title>{body}</svg>"
    )


def _axis(w: int, scale: float, top: float, bottom: float, fmt: Callable[[float], str]) -> str:
    """Vertical grid lines with tick labels at round values."""
    if scale <= 0:
        return ""
    plot = w - _LABEL - _RIGHT
    raw = scale / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), raw)
    out = []
    v = 0.0
    while v <= scale + 1e-9:
        x = _LABEL + v / scale * plot
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top:.0f}" y2="{bottom:.0f}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 12:.0f}" text-anchor="middle">{_e(fmt(v))}</text>')
        v += step
    return "".join(out)


def _band_rect(w: int, band: Mapping[str, float], scale: float, top: float, bottom: float, label: str) -> str:
    plot = w - _LABEL - _RIGHT
    x0 = _LABEL + band["lower"] / scale * plot
    x1 = _LABEL + min(band["upper"], scale) / scale * plot
    xm = _LABEL + band["mean"] / scale * plot
    return (
        f'<rect class="band" x="{x0:.1f}" y="{top:.0f}" width="{max(x1 - x0, 1):.1f}" height="{bottom - top:.0f}">'
        f"<title>{_e(label)}</title></rect>"
        f'<line class="mean" x1="{xm:.1f}" x2="{xm:.1f}" y1="{top:.0f}" y2="{bottom:.0f}"/>'
    )


def _paired_bars(
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
    plot = w - _LABEL - _RIGHT
    keys = (before_key, after_key) if before_key else (after_key,)
    values = [float(r[k]) for r in reps for k in keys]
    scale = max([*values, band["upper"] if band else 0.0, 1.0]) * 1.05
    bottom = top + row_h * len(reps)
    body = []
    lx = _LABEL
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
            f'<text class="legend" x="{lx + 16}" y="12">{_e(band_label)}</text>'
        )
    body.append(_axis(w, scale, top, bottom, fmt))
    if band:
        body.append(_band_rect(w, band, scale, top, bottom, band_label))
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
        body.append(f'<text class="name" x="{_LABEL - 6}" y="{y + 18 + off}" text-anchor="end">{_e(name)}</text>')
        wa = a / scale * plot
        if before_key:
            b = float(r[before_key])
            body.append(
                f'<rect class="bar before" x="{_LABEL}" y="{y + 4}" width="{b / scale * plot:.1f}" height="7">'
                f"<title>{_e(r['name'])} before: {_e(fmt(b))}</title></rect>"
            )
        body.append(
            f'<rect class="bar after {cls}" x="{_LABEL}" y="{y + 12 + off}" width="{wa:.1f}" height="13">'
            f"<title>{_e(r['name'])}{' after' if before_key else ''}: {_e(fmt(a))}</title></rect>"
        )
        body.append(
            f'<text class="val" x="{_LABEL + wa + 4:.1f}" y="{y + 23 + off}">{_e(fmt(a))}</text>'
            if wa < plot - 40
            else f'<text class="val inside" x="{_LABEL + wa - 4:.1f}" y="{y + 23 + off}" '
            f'text-anchor="end">{_e(fmt(a))}</text>'
        )
        if right is not None:
            body.append(f'<text class="right" x="{w - 4}" y="{y + 20 + off}" text-anchor="end">{right(r)}</text>')
    return _svg(w, bottom + 18, "".join(body), label)


def _stacked_bars(
    w: int,
    reps: Sequence[Mapping[str, Any]],
    key: str,
    order: Sequence[str],
    colors: Mapping[str, str],
    label: str,
) -> str:
    """Per rep one bar split by category (segments, priority tiers)."""
    row_h, top = 22, 8
    plot = w - _LABEL - _RIGHT
    per_row = max(1, (w - _LABEL) // 100)
    legend_rows = (len(order) + per_row - 1) // per_row
    totals = [sum(r[key].values()) for r in reps]
    scale = max([*totals, 1]) * 1.02
    body = []
    for i, r in enumerate(reps):
        y = top + i * row_h
        name = r["name"] + ("" if r["available"] else " (away)")
        body.append(f'<text class="name" x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{_e(name)}</text>')
        x = float(_LABEL)
        for cat in order:
            n = r[key].get(cat, 0)
            if not n:
                continue
            bw = n / scale * plot
            body.append(
                f'<rect class="bar seg" x="{x:.1f}" y="{y + 3}" width="{bw:.1f}" height="15" fill="{colors[cat]}">'
                f"<title>{_e(r['name'])}: {_e(cat)} {n}</title></rect>"
            )
            if bw >= 18:
                ink = "inbar dark" if colors[cat] in _LIGHT else "inbar"
                body.append(f'<text class="{ink}" x="{x + bw / 2:.1f}" y="{y + 14}" text-anchor="middle">{n}</text>')
            x += bw
        body.append(f'<text class="val" x="{x + 4:.1f}" y="{y + 15}">{sum(r[key].values())}</text>')
    ly = top + row_h * len(reps) + 10
    for j, cat in enumerate(order):
        lx = _LABEL + (j % per_row) * 100
        yy = ly + (j // per_row) * 16
        body.append(
            f'<rect x="{lx}" y="{yy}" width="10" height="10" fill="{colors[cat]}"/>'
            f'<text class="legend" x="{lx + 14}" y="{yy + 9}">{_e(cat[:14])}</text>'
        )
    return _svg(w, ly + legend_rows * 16 + 4, "".join(body), label)


def _simple_bars(
    w: int,
    reps: Sequence[Mapping[str, Any]],
    values: Sequence[float | None],
    fmt: Callable[[float], str],
    label: str,
    cls: str,
) -> str:
    row_h, top = 22, 6
    plot = w - _LABEL - _RIGHT
    scale = max([v for v in values if v is not None] + [1e-9]) * 1.05
    bottom = top + row_h * len(reps)
    body = [_axis(w, scale, top, bottom, fmt)]
    for i, (r, v) in enumerate(zip(reps, values, strict=True)):
        y = top + i * row_h
        name = r["name"] + ("" if r["available"] else " (away)")
        body.append(f'<text class="name" x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{_e(name)}</text>')
        if v is None:
            body.append(f'<text class="val" x="{_LABEL + 4}" y="{y + 15}">no closed deals</text>')
            continue
        bw = v / scale * plot
        body.append(
            f'<rect class="bar {cls}" x="{_LABEL}" y="{y + 3}" width="{bw:.1f}" height="15">'
            f"<title>{_e(r['name'])}: {_e(fmt(v))}</title></rect>"
            f'<text class="val" x="{_LABEL + bw + 4:.1f}" y="{y + 15}">{_e(fmt(v))}</text>'
        )
    return _svg(w, bottom + 18, "".join(body), label)


def _tier_chart(w: int, prios: Mapping[str, Any], paired: bool = True) -> str:
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
                f"<title>{_e(t)} {key}: {n}</title></rect>"
                f'<text class="tick" x="{bx + bw / 2 - 1:.1f}" y="{base - bh - 3:.1f}" text-anchor="middle">{n}</text>'
            )
        body.append(f'<text class="name" x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle">{_e(t)}</text>')
    return _svg(w, h, "".join(body), "Open cards per priority tier" + (", before and after" if paired else ""))


def _heatmap(w: int, reps: Sequence[Mapping[str, Any]], months: Sequence[str]) -> str:
    """Won value per rep and month: one shaded cell each, the value written in it."""
    row_h, top = 22, 18
    cell = (w - _LABEL - 70) / max(len(months), 1)
    top_v = max([r["won_by_month"].get(m, 0.0) for r in reps for m in months] + [1.0])
    body = [
        f'<text class="tick" x="{_LABEL + (k + 0.5) * cell:.1f}" y="12" text-anchor="middle">{_e(m)}</text>'
        for k, m in enumerate(months)
    ]
    body.append(f'<text class="tick" x="{w - 34}" y="12" text-anchor="middle">total</text>')
    for i, r in enumerate(reps):
        y = top + i * row_h
        name = r["name"] + ("" if r["available"] else " (away)")
        body.append(f'<text class="name" x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{_e(name)}</text>')
        total = 0.0
        for k, m in enumerate(months):
            v = float(r["won_by_month"].get(m, 0.0))
            total += v
            alpha = 0.08 + 0.85 * (v / top_v) if v else 0.0
            x = _LABEL + k * cell
            body.append(
                f'<rect class="cell" x="{x + 1:.1f}" y="{y + 1}" width="{cell - 2:.1f}" height="{row_h - 2}" '
                f'fill="rgba(39,110,170,{alpha:.2f})"><title>{_e(r["name"])} {_e(m)}: {_e(_n(v))}</title></rect>'
                f'<text class="{"inbar" if alpha > 0.5 else "cellv"}" x="{x + cell / 2:.1f}" y="{y + 15}" '
                f'text-anchor="middle">{_e(_money(v)) if v else "–"}</text>'
            )
        body.append(f'<text class="val" x="{w - 4}" y="{y + 15}" text-anchor="end">{_e(_money(total))}</text>')
    return _svg(w, top + row_h * len(reps) + 6, "".join(body), "Won value per rep and month")


_CSS = """
:root { --fg:#1c2833; --muted:#5d6d7e; --line:#d5d8dc; --accent:#276eaa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 22px; margin: 4px 0 2px; } h2 { font-size: 17px; margin: 0 0 6px; }
.sub { color: var(--muted); margin: 0 0 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 12px 0 18px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.card b { display: block; font-size: 22px; } .card span { color: var(--muted); font-size: 12px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; }
section { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 0 0 18px;
          break-inside: avoid; }
section p.note { color: var(--muted); font-size: 12px; margin: 2px 0 8px; }
svg.chart { display: block; width: 100%; height: auto; font-size: 11px; }
svg text { fill: var(--fg); } svg .tick { fill: var(--muted); font-size: 10px; }
svg .legend { font-size: 11px; fill: var(--muted); } svg .val { font-size: 11px; }
svg .right { font-size: 11px; } svg .right .gain { fill: #1e8449; } svg .right .loss { fill: #c0392b; }
svg .inbar { fill: #fff; font-size: 10px; } svg .inbar.dark { fill: #1c2833; }
svg .cellv { fill: var(--fg); font-size: 10px; }
svg .val.inside { fill: #fff; }
svg .grid { stroke: #eaeded; stroke-width: 1; }
svg .band { fill: #abebc6; opacity: .45; } svg .mean { stroke: #1e8449; stroke-dasharray: 4 3; }
svg .bar.before, svg .legend-before { fill: #aab7b8; }
svg .bar.after.in { fill: #2e86c1; } svg .bar.after.out { fill: #e67e22; } svg .bar.after.away { fill: #bfc9ca; }
svg .bar.ev { fill: #7d3c98; } svg .bar.conv { fill: #17a589; } svg .bar.tier-after { fill: #2e86c1; }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 0 0 8px; }
.filters label { font-size: 13px; color: var(--muted); }
select, input { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 5px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eef0f1; vertical-align: top; }
th { position: sticky; top: 0; background: #f8f9f9; }
td.why { color: var(--muted); } .kind { font-size: 11px; background: #eef3f8; border-radius: 4px; padding: 0 5px; }
tr[hidden] { display: none; }
.notes li { color: var(--muted); }
td.num { text-align: right; white-space: nowrap; } tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
.att { display: inline-block; width: 60px; height: 8px; background: #eaeded; border-radius: 4px;
       vertical-align: middle; }
.att span { display: block; height: 8px; background: #2e86c1; border-radius: 4px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  .filters, .noprint { display: none !important; }
  section { border: none; padding: 0; margin-bottom: 12px; }
  .grid2 { grid-template-columns: 1fr 1fr; }
  th { position: static; }
  a { color: inherit; text-decoration: none; }
  @page { size: A4; margin: 12mm; }
}
"""

_JS = """
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  function filter() {
    var rep = document.getElementById('f-rep').value;
    var kind = document.getElementById('f-kind').value;
    var field = document.getElementById('f-field').value;
    var text = document.getElementById('f-text').value.toLowerCase();
    var shown = 0;
    document.querySelectorAll('#changes tbody tr').forEach(function (tr) {
      var ok = (!rep || JSON.parse(tr.dataset.reps).indexOf(rep) >= 0)
        && (!kind || tr.dataset.kind === kind) && (!field || tr.dataset.field === field)
        && (!text || tr.textContent.toLowerCase().indexOf(text) >= 0);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById('shown').textContent = String(shown);
  }
  ['f-rep', 'f-kind', 'f-field', 'f-text'].forEach(function (id) {
    var el = document.getElementById(id);
    if (el) { el.addEventListener('input', filter); el.addEventListener('change', filter); }
  });
  function fromHash() {
    // Filters can be linked: report.html#rep=Ana%20Alvarez&reason=rep%20away&field=assignees&q=harbor
    var params = new URLSearchParams(window.location.hash.slice(1));
    [['rep', 'f-rep'], ['reason', 'f-kind'], ['field', 'f-field'], ['q', 'f-text']].forEach(function (p) {
      var el = document.getElementById(p[1]);
      if (el && params.has(p[0])) { el.value = params.get(p[0]); }
    });
  }
  window.addEventListener('load', function () {
    if (document.getElementById('f-rep')) { fromHash(); filter(); }
    // Self-check, read by the browser test: every chart laid out with a size and bars drawn.
    var charts = document.querySelectorAll('svg.chart');
    var sized = 0;
    charts.forEach(function (svg) {
      var box = svg.getBoundingClientRect();
      svg.setAttribute('data-rendered', Math.round(box.width) + 'x' + Math.round(box.height));
      if (box.width > 100 && box.height > 40) { sized += 1; }
    });
    var bars = 0;
    document.querySelectorAll('svg.chart rect.bar').forEach(function (r) {
      if (r.getBBox().width > 0) { bars += 1; }
    });
    var check = document.getElementById('render-check');
    check.setAttribute('data-charts', String(charts.length));
    check.setAttribute('data-sized', String(sized));
    check.setAttribute('data-bars', String(bars));
    check.setAttribute('data-errors', JSON.stringify(errors));
    check.setAttribute('data-done', 'yes');
  });
})();
"""


def _json_for_script(data: Mapping[str, Any]) -> str:
    """JSON safe inside <script>: no '</script>', no '<!--', no line separators."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return text


def embedded_data(page: str) -> dict[str, Any]:
    """The data embedded in a page written by :func:`render_html`."""
    start_tag = '<script type="application/json" id="tasksync-data">'
    start = page.index(start_tag) + len(start_tag)
    end = page.index("</script>", start)
    data: dict[str, Any] = json.loads(page[start:end])
    return data


def _changes_section(data: Mapping[str, Any]) -> str:
    changes = data["changes"]
    if not changes:
        return (
            '<section><h2>Changes</h2><p class="note">Nothing to change: the board already matches the policy.</p>'
            "</section>"
        )
    reps = sorted({n for c in changes for n in c["reps"]})
    kinds = sorted({c["reason_kind"] for c in changes})
    fields = sorted({c["field"] for c in changes})

    def options(values: Sequence[str], everyone: str) -> str:
        return f'<option value="">{_e(everyone)}</option>' + "".join(
            f'<option value="{_e(v)}">{_e(v)}</option>' for v in values
        )

    rows = []
    for c in changes:
        rows.append(
            f'<tr data-reps="{_e(json.dumps(c["reps"], ensure_ascii=False))}" data-kind="{_e(c["reason_kind"])}" '
            f'data-field="{_e(c["field"])}"><td>{_e(c["title"])}</td><td>{_e(c["field"])}</td>'
            f"<td>{_e(c['before'])}</td><td>{_e(c['after'])}</td>"
            f'<td class="why"><span class="kind">{_e(c["reason_kind"])}</span> {_e(c["reason"])}</td></tr>'
        )
    return (
        '<section id="changes-section"><h2>Changes</h2>'
        '<div class="filters">'
        f'<label>Rep <select id="f-rep">{options(reps, "all reps")}</select></label>'
        f'<label>Reason <select id="f-kind">{options(kinds, "all reasons")}</select></label>'
        f'<label>Field <select id="f-field">{options(fields, "all fields")}</select></label>'
        '<label>Search <input id="f-text" type="search" placeholder="card, name..."></label>'
        f'<span class="note"><span id="shown">{len(changes)}</span> of {len(changes)} shown</span>'
        "</div>"
        '<table id="changes"><thead><tr><th>Card</th><th>Field</th><th>From</th><th>To</th><th>Why</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _targets_section(targets: Mapping[str, Any]) -> str:
    """Quota, target, won, attainment (with a bar to 100%) and coverage per rep and for the team."""
    rows = []
    for r in [*targets["reps"], {**targets["team"], "name": "Team"}]:
        att = r["attainment"]
        width = 0.0 if att is None else min(1.0, att) * 100
        bar = f'<span class="att"><span style="width:{width:.0f}%"></span></span>' if att is not None else ""
        cover = "–" if r["coverage"] is None else f"{r['coverage']:.1f}×"
        quota = "–" if r["quota"] is None else _n(r["quota"])
        target = "–" if r["target"] is None else _n(r["target"])
        cls = ' class="total"' if r["name"] == "Team" else ""
        rows.append(
            f'<tr{cls}><td>{_e(r["name"])}</td><td class="num">{quota}</td><td class="num">{target}</td>'
            f'<td class="num">{_n(r["won"])}</td><td class="num">{_pct(att)} {bar}</td>'
            f'<td class="num">{_n(r["expected_value"])}</td><td class="num">{cover}</td></tr>'
        )
    return (
        f'<section id="targets"><h2>Targets</h2><p class="note">{_e(targets["explain"])}</p>'
        "<table><thead><tr><th>Rep</th><th>Quota / month</th><th>Target</th><th>Won</th><th>Attainment</th>"
        "<th>Open expected value</th><th>Coverage</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


_FIELD_NAMES = {"assignees": "owner", "priority": "priority", "stage": "list", "closed": "archived"}


def _conflicts_section(conflicts: Sequence[Mapping[str, Any]], edits: Sequence[Mapping[str, Any]]) -> str:
    """Fields people changed by hand: what tasksync wrote, what the person set, what the plan wanted;
    and, in one line, the people's changes the policy leaves as they are."""
    rows = []
    for c in conflicts:
        field = _FIELD_NAMES.get(c["field"], c["field"])
        rows.append(
            f"<tr><td>{_e(c['title'])}</td><td>{_e(field)}</td><td>{_e(c['last_written'])}</td>"
            f"<td>{_e(c['current'])}</td><td>{_e(c['wanted'])}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>Card</th><th>Field</th><th>tasksync wrote</th><th>A person set</th>"
        f"<th>The plan wants</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    kept = (
        f"<p class=\"note\">{len(edits)} other field(s) changed by people are what the policy wants too, or "
        "not managed by it: left as they are and recorded as theirs when the plan is applied.</p>"
        if edits
        else ""
    )
    return (
        '<section id="conflicts"><h2>Conflicts</h2><p class="note">'
        f"{len(conflicts)} field(s) a person changed on the board since tasksync wrote them, where the policy "
        f"wants another value; left alone (use --force to override).</p>{table}{kept}</section>"
    )


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page, from the data dict alone."""
    reps = data["reps"]
    band = data["band"]
    is_plan = data["kind"] == "plan"
    plan = data.get("plan") or {}
    ratio = band["ratio"]
    wl = band["workload"]
    ev = band["expected_value"]

    def shift(r: Mapping[str, Any]) -> str:
        return (
            f'<tspan class="gain">+{r["gained"]}</tspan> / <tspan class="loss">−{r["lost"]}</tspan>' if is_plan else ""
        )

    in_band_after = sum(1 for r in reps if r["available"] and wl["lower"] - 0.5 <= r["after"] <= wl["upper"] + 0.5)
    in_band_before = sum(1 for r in reps if r["available"] and wl["lower"] - 0.5 <= r["before"] <= wl["upper"] + 0.5)
    available = sum(1 for r in reps if r["available"])
    changes = data["changes"]
    moves = sum(1 for c in changes if c["field"] == "assignees")
    prio_changes = sum(1 for c in changes if c["field"] == "priority")
    creates = sum(1 for c in changes if c["field"] == "create")
    total_ev = sum(r["expected_value"] for r in reps)

    title = f"Plan {plan.get('id', '')} — {data['board']['name']}" if is_plan else f"Report — {data['board']['name']}"
    cards = [
        (f"{in_band_after}/{available}", "available reps in the band" + (" after" if is_plan else "")),
    ]
    if is_plan:
        cards += [
            (f"{in_band_before}/{available}", "in the band before"),
            (_n(moves), "owner changes"),
            (_n(prio_changes), "priority changes"),
            (_n(creates), "cards to create"),
        ]
    cards += [
        (_money(total_ev), "expected value (open)"),
        (f"{wl['lower']:.0f}–{wl['upper']:.0f}", f"band: mean {wl['mean']:.1f} ±{ratio:.0%}"),
    ]
    card_html = "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(t)}</span></div>' for v, t in cards)

    seg_order = [s["segment"] for s in data["segments"]]
    seg_order += sorted({k for r in reps for k in r["segments"]} - set(seg_order))
    seg_colors = {
        s: (_NONE_COLOR if s == "(none)" else _SEGMENT_COLORS[i % len(_SEGMENT_COLORS)])
        for i, s in enumerate(seg_order)
    }
    tiers = list(data["priorities"]["tiers"])
    tier_colors = {
        t: (_NONE_COLOR if t == "(none)" else _TIER_COLORS[i % len(_TIER_COLORS)]) for i, t in enumerate(tiers)
    }

    band_label = f"band {wl['lower']:.0f}–{wl['upper']:.0f} (mean ±{ratio:.0%})"
    ev_band = ev if band["balance_by"] == "expected_value" else None
    ev_label = f"band {_money(ev['lower'])}–{_money(ev['upper'])} (mean ±{ratio:.0%})"
    months = list(data["months"])

    sections = [
        '<section><h2>Workload per rep</h2><p class="note">Open cards per rep'
        + (", before (grey) and after the plan; gained / lost on the right" if is_plan else "")
        + f". Green: the band the policy keeps available reps in (mean {wl['mean']:.1f} ±{ratio:.0%}); "
        "orange bars are outside it.</p>"
        + _paired_bars(
            _WIDE,
            reps,
            "before" if is_plan else None,
            "after",
            _n,
            "Workload per rep before and after",
            wl,
            band_label,
            shift,
        )
        + "</section>",
        '<div class="grid2">'
        '<section><h2>Expected value per rep</h2><p class="note">Sum of deal value × win probability of open work'
        + (", before and after." if is_plan else ".")
        + "</p>"
        + _paired_bars(
            _HALF,
            reps,
            "expected_value_before" if is_plan else None,
            "expected_value",
            _money,
            "Expected value per rep",
            ev_band,
            ev_label,
        )
        + "</section>"
        '<section><h2>Segment mix per rep</h2><p class="note">Open cards per segment (configured rules, else sector)'
        + (" after the plan." if is_plan else ".")
        + "</p>"
        + _stacked_bars(_HALF, reps, "segments", seg_order, seg_colors, "Segment mix per rep")
        + "</section></div>",
        '<div class="grid2">'
        '<section><h2>Priority distribution</h2><p class="note">Open cards per tier'
        + (", before and after." if is_plan else ".")
        + "</p>"
        + _tier_chart(_HALF, data["priorities"], paired=is_plan)
        + _stacked_bars(_HALF, reps, "priorities", tiers, tier_colors, "Priority tiers per rep")
        + "</section>"
        '<section><h2>Conversion rate per rep</h2><p class="note">Won ÷ closed deals in the CRM history.</p>'
        + _simple_bars(
            _HALF, reps, [r["conversion"] for r in reps], lambda v: f"{v:.0%}", "Conversion rate per rep", "conv"
        )
        + "</section></div>",
        f'<section><h2>Won value per month</h2><p class="note">Closed-won deal value, {_e(months[0] if months else "")}'
        f" to {_e(months[-1] if months else '')}. {_e((data.get('window') or {}).get('explain', ''))}</p>"
        + _heatmap(_WIDE, reps, months)
        + "</section>",
    ]
    if data.get("targets"):
        sections.append(_targets_section(data["targets"]))
    if is_plan:
        sections.append(_changes_section(data))
    if data.get("conflicts") or data.get("edits"):
        sections.append(_conflicts_section(data.get("conflicts", []), data.get("edits", [])))
    notes = (plan.get("notes") or []) + (
        [f"{data['unowned_tasks']} open tasks have no owner among the reps"] if data["unowned_tasks"] else []
    )
    if notes:
        sections.append(
            '<section><h2>Notes</h2><ul class="notes">'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul></section>"
        )
    sub = f"{data['board']['ref']} · as of {data['today']}" + (
        f" · planned {plan.get('created_at', '')[:16].replace('T', ' ')} UTC" if is_plan else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_e(title)}</h1><p class="sub">{_e(sub)}</p>'
        f'<div class="cards">{card_html}</div>' + "".join(sections) + '<div id="render-check" hidden></div>'
        f'<script type="application/json" id="tasksync-data">{_json_for_script(data)}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )


def write_html(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
