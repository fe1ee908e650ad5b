"""A self-contained HTML report built from the data of :func:`tasksync.render.plan_json` / ``report_json``.

One file, no network: inline CSS, charts as inline SVG (:mod:`tasksync.report_charts`), a little inline JS to filter
the list of changes. Every text from boards and CRMs is escaped. The data itself is embedded as
JSON (``<script type="application/json" id="tasksync-data">``), equal to ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasksync.report_charts import (
    HALF,
    NONE_COLOR,
    SEGMENT_COLORS,
    TIER_COLORS,
    WIDE,
    esc,
    heatmap,
    money,
    num,
    paired_bars,
    simple_bars,
    stacked_bars,
    tier_chart,
)

__all__ = ["embedded_data", "render_html", "write_html"]

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
        return f'<option value="">{esc(everyone)}</option>' + "".join(
            f'<option value="{esc(v)}">{esc(v)}</option>' for v in values
        )

    rows = []
    for c in changes:
        rows.append(
            f'<tr data-reps="{esc(json.dumps(c["reps"], ensure_ascii=False))}" data-kind="{esc(c["reason_kind"])}" '
            f'data-field="{esc(c["field"])}"><td>{esc(c["title"])}</td><td>{esc(c["field"])}</td>'
            f"<td>{esc(c['before'])}</td><td>{esc(c['after'])}</td>"
            f'<td class="why"><span class="kind">{esc(c["reason_kind"])}</span> {esc(c["reason"])}</td></tr>'
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
    total = {**targets["team"], "name": targets["team"].get("label", "Team")}
    for r in [*targets["reps"], total]:
        att = r["attainment"]
        width = 0.0 if att is None else min(1.0, att) * 100
        bar = f'<span class="att"><span style="width:{width:.0f}%"></span></span>' if att is not None else ""
        cover = "–" if r["coverage"] is None else f"{r['coverage']:.1f}×"
        quota = "–" if r["quota"] is None else num(r["quota"])
        target = "–" if r["target"] is None else num(r["target"])
        cls = ' class="total"' if r is total else ""
        rows.append(
            f'<tr{cls}><td>{esc(r["name"])}</td><td class="num">{quota}</td><td class="num">{target}</td>'
            f'<td class="num">{num(r["won"])}</td><td class="num">{_pct(att)} {bar}</td>'
            f'<td class="num">{num(r["expected_value"])}</td><td class="num">{cover}</td></tr>'
        )
    return (
        f'<section id="targets"><h2>Targets</h2><p class="note">{esc(targets["explain"])}</p>'
        "<table><thead><tr><th>Rep</th><th>Quota / month</th><th>Target</th><th>Won</th><th>Attainment</th>"
        "<th>Open expected value</th><th>Coverage</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


_FIELD_NAMES = {"assignees": "owner", "priority": "priority", "stage": "list", "closed": "archived"}


def _conflicts_section(conflicts: Sequence[Mapping[str, Any]], edits: Sequence[Mapping[str, Any]]) -> str:
    """Fields people changed by hand: what the plan expected (what tasksync last wrote or found
    there), what the person set, what the plan wanted; and, in one line, the people's changes the
    policy leaves as they are."""
    rows = []
    for c in conflicts:
        field = _FIELD_NAMES.get(c["field"], c["field"])
        rows.append(
            f"<tr><td>{esc(c['title'])}</td><td>{esc(field)}</td><td>{esc(c['last_written'])}</td>"
            f"<td>{esc(c['current'])}</td><td>{esc(c['wanted'])}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>Card</th><th>Field</th><th>The plan expected</th><th>A person set</th>"
        f"<th>The plan wants</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    kept = (
        f'<p class="note">{len(edits)} other field(s) changed by people are what the policy wants too, or '
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
    is_plan = data["kind"] == "plan"
    plan = data.get("plan") or {}
    sections = _chart_sections(data)
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
            + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul></section>"
        )
    title = f"Plan {plan.get('id', '')} — {data['board']['name']}" if is_plan else f"Report — {data['board']['name']}"
    sub = f"{data['board']['ref']} · as of {data['today']}" + (
        f" · planned {plan.get('created_at', '')[:16].replace('T', ' ')} UTC" if is_plan else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="sub">{esc(sub)}</p>'
        f'<div class="cards">{_summary_cards(data)}</div>' + "".join(sections) + '<div id="render-check" hidden></div>'
        f'<script type="application/json" id="tasksync-data">{_json_for_script(data)}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )


def _summary_cards(data: Mapping[str, Any]) -> str:
    """The figures at the top: reps in the band (before and after), changes, expected value, band."""
    reps = data["reps"]
    is_plan = data["kind"] == "plan"
    wl = data["band"]["workload"]
    in_band_after = sum(1 for r in reps if r["available"] and wl["lower"] - 0.5 <= r["after"] <= wl["upper"] + 0.5)
    in_band_before = sum(1 for r in reps if r["available"] and wl["lower"] - 0.5 <= r["before"] <= wl["upper"] + 0.5)
    available = sum(1 for r in reps if r["available"])
    changes = data["changes"]
    cards = [
        (f"{in_band_after}/{available}", "available reps in the band" + (" after" if is_plan else "")),
    ]
    if is_plan:
        cards += [
            (f"{in_band_before}/{available}", "in the band before"),
            (num(sum(1 for c in changes if c["field"] == "assignees")), "owner changes"),
            (num(sum(1 for c in changes if c["field"] == "priority")), "priority changes"),
            (num(sum(1 for c in changes if c["field"] == "create")), "cards to create"),
        ]
    cards += [
        (money(sum(r["expected_value"] for r in reps)), "expected value (open)"),
        (f"{wl['lower']:.0f}–{wl['upper']:.0f}", f"band: mean {wl['mean']:.1f} ±{data['band']['ratio']:.0%}"),
    ]
    return "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(t)}</span></div>' for v, t in cards)


def _chart_sections(data: Mapping[str, Any]) -> list[str]:
    """Workload, expected value, segment mix, priorities, conversion and won value per month."""
    reps = data["reps"]
    band = data["band"]
    is_plan = data["kind"] == "plan"
    ratio = band["ratio"]
    wl = band["workload"]
    ev = band["expected_value"]

    def shift(r: Mapping[str, Any]) -> str:
        return (
            f'<tspan class="gain">+{r["gained"]}</tspan> / <tspan class="loss">−{r["lost"]}</tspan>' if is_plan else ""
        )

    seg_order = [s["segment"] for s in data["segments"]]
    seg_order += sorted({k for r in reps for k in r["segments"]} - set(seg_order))
    seg_colors = _colors(seg_order, SEGMENT_COLORS)
    tiers = list(data["priorities"]["tiers"])
    tier_colors = _colors(tiers, TIER_COLORS)
    band_label = f"band {wl['lower']:.0f}–{wl['upper']:.0f} (mean ±{ratio:.0%})"
    ev_band = ev if band.get("value_ratio") else None  # the value band, when the policy keeps one
    ev_label = f"band {money(ev['lower'])}–{money(ev['upper'])} (mean ±{band.get('value_ratio') or ratio:.0%})"
    months = list(data["months"])
    sections = [
        '<section><h2>Workload per rep</h2><p class="note">Open cards per rep'
        + (", before (grey) and after the plan; gained / lost on the right" if is_plan else "")
        + f". Green: the band the policy keeps available reps in (mean {wl['mean']:.1f} ±{ratio:.0%}); "
        "orange bars are outside it.</p>"
        + paired_bars(
            WIDE,
            reps,
            "before" if is_plan else None,
            "after",
            num,
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
        + paired_bars(
            HALF,
            reps,
            "expected_value_before" if is_plan else None,
            "expected_value",
            money,
            "Expected value per rep",
            ev_band,
            ev_label,
        )
        + "</section>"
        '<section><h2>Segment mix per rep</h2><p class="note">Open cards per segment (configured rules, else sector)'
        + (" after the plan." if is_plan else ".")
        + "</p>"
        + stacked_bars(HALF, reps, "segments", seg_order, seg_colors, "Segment mix per rep")
        + "</section></div>",
        '<div class="grid2">'
        '<section><h2>Priority distribution</h2><p class="note">Open cards per tier'
        + (", before and after." if is_plan else ".")
        + "</p>"
        + tier_chart(HALF, data["priorities"], paired=is_plan)
        + stacked_bars(HALF, reps, "priorities", tiers, tier_colors, "Priority tiers per rep")
        + "</section>"
        '<section><h2>Conversion rate per rep</h2><p class="note">Won ÷ closed deals in the CRM history.</p>'
        + simple_bars(
            HALF, reps, [r["conversion"] for r in reps], lambda v: f"{v:.0%}", "Conversion rate per rep", "conv"
        )
        + "</section></div>",
        '<section><h2>Won value per month</h2><p class="note">'
        f"Closed-won deal value, {esc(months[0] if months else '')}"
        f" to {esc(months[-1] if months else '')}. {esc((data.get('window') or {}).get('explain', ''))}</p>"
        + heatmap(WIDE, reps, months)
        + "</section>",
    ]
    return sections


def _colors(names: Sequence[str], palette: Sequence[str]) -> dict[str, str]:
    """A colour per name, in order, from ``palette``; grey for "(none)"."""
    return {s: (NONE_COLOR if s == "(none)" else palette[i % len(palette)]) for i, s in enumerate(names)}


def write_html(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
