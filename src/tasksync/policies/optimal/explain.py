"""The optimal policy's explanation: why each card goes where it goes (a Reason citing the final
figures), the notes on what could not be met and why, and owned cards moved by cause."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tasksync.policies.base import Decision, Decisions
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.explain import Tables, moved_note
from tasksync.policies.optimal.model import EPS, Group, Model
from tasksync.policies.reasons import ReasonKind
from tasksync.policies.workload import capacity, value_capacity, within_value
from tasksync.settings import PolicySettings

__all__ = ["cause", "explain", "feasibility_notes", "outside_notes"]


def cause(t: Tables, item: WorkItem, g: Group, to: str, gain_ok: bool) -> ReasonKind:
    """Why ``item`` leaves its owner for ``to``, judged on the final tables."""
    o = item.owner
    rep = t.reps.get(o) if o else None
    if o is None:
        return ReasonKind.OWNER_LEFT if item.owner_left else ReasonKind.UNOWNED
    if rep is None or not rep.available:
        avail = t.book.crm.reps_by_id.get(o)
        return ReasonKind.SHARE_FULL if avail is not None and avail.available else ReasonKind.REP_AWAY
    if t.before_n[o] > capacity(rep):
        return ReasonKind.OVER_CAPACITY
    if not within_value(t.before_pipe.get(o, 0.0), value_capacity(rep)):
        return ReasonKind.OVER_VALUE_CAPACITY
    if t.before_n[o] > t.count.upper + EPS:
        return ReasonKind.ABOVE_BAND
    own, theirs = t.value_of(o), t.value_of(to)
    if own is not None and t.before_ev.get(o, 0.0) > own.upper + EPS:
        return ReasonKind.ABOVE_VALUE_BAND
    if len({i.owner for i in g.items if i.owner is not None}) > 1:
        # The account's cards have several owners today and go whole to one rep: that, not the
        # receiver's band, is why this card leaves its owner (whoever receives the account).
        return ReasonKind.ACCOUNT_TOGETHER
    if t.before_n[to] < t.count.lower - EPS:
        return ReasonKind.BELOW_BAND
    if theirs is not None and t.before_ev.get(to, 0.0) < theirs.lower - EPS:
        return ReasonKind.BELOW_VALUE_BAND
    return ReasonKind.BETTER_FIT if gain_ok else ReasonKind.REBALANCING


def explain(
    book: Book, p: PolicySettings, t: Tables, models: list[tuple[Model, np.ndarray]], out: Decisions
) -> dict[str, str | None]:
    """Owner and reason per movable item; ``out.moved`` counts owned cards moved by cause."""
    decided: dict[str, str | None] = {}
    owned = 0
    placed: list[tuple[WorkItem, Group, str]] = []  # every card given an owner, with group and owner
    for m, choice in models:
        for g, r in zip(m.groups, choice.tolist(), strict=True):
            to = m.reps[r] if r >= 0 else None
            for item in g.items:
                if item.owner is not None and item.task_id is not None:
                    owned += 1
                if to is not None:
                    placed.append((item, g, to))
    # The moving cards' win rates and expected values with their receivers and owners, at once.
    moving = [(item, to) for item, _, to in placed if item.owner != to]
    terms = t.model.terms([item for item, _ in moving])
    win = terms.probabilities([to for _, to in moving])
    known = zip(
        win.tolist(),
        (win * terms.value).tolist(),
        terms.expected_values([item.owner for item, _ in moving]).tolist(),
        strict=True,
    )
    for item, g, to in placed:
        decided[item.key] = to
        if item.owner == to:
            kind = ReasonKind.PINNED if g.pinned == to else ReasonKind.KEPT
            out.by_key[item.key] = Decision(to, reason=t.reason(kind, item, None, to))
            continue
        fig = next(known)
        kind = cause(t, item, g, to, fig[1] - fig[2] > 0 and not p.rebalance_only)
        out.by_key[item.key] = Decision(to, reason=t.reason(kind, item, item.owner, to, fig))
        if item.owner is not None and item.task_id is not None:  # cards on the board only
            out.moved[kind.value] += 1
    note = moved_note(out.moved, owned)
    if note:
        out.notes.append(note)
    return decided


def feasibility_notes(m: Model, names: Mapping[str, str]) -> list[str]:
    """What the inputs alone rule out: capacity below the open cards, locked load over capacity."""
    notes: list[str] = []
    n_r = len(m.reps)
    cards = float(m.fixed[0].sum() + m.count.sum())
    if np.isfinite(m.cap).all() and float(m.cap.sum()) < cards:
        notes.append(
            f"capacity of {n_r} available reps totals {m.cap.sum():.0f} < {cards:.0f} open cards: "
            "some accounts keep their current owner or stay unassigned"
        )
    over = [names.get(r, r) for k, r in enumerate(m.reps) if m.fixed[0][k] > m.cap[k]]
    if over:
        notes.append(f"locked or unmanaged cards alone exceed the capacity of: {', '.join(over)}")
    if m.value_capped:
        pipeline = float(m.fixed[1].sum() + m.value_.sum())
        if np.isfinite(m.vcap).all() and not float(m.vcap.sum()) >= pipeline - 1e-6 * max(pipeline, 1.0):
            notes.append(
                f"value capacity of {n_r} available reps totals {m.vcap.sum():,.0f} < {pipeline:,.0f} open "
                "pipeline: some accounts keep their current owner or stay unassigned"
            )
        over_v = [
            f"{names.get(r, r)} ({m.fixed[1][k]:,.0f} > {m.vcap[k]:,.0f})"
            for k, r in enumerate(m.reps)
            if not m.vfits(float(m.fixed[1][k]), k)
        ]
        if over_v:
            notes.append(f"locked or unmanaged cards alone exceed the value capacity of: {', '.join(over_v)}")
    low = [names.get(r, r) for k, r in enumerate(m.reps) if m.cap[k] < m.lower - EPS]
    if low:
        notes.append(
            f"capacity below the band's lower bound {m.lower:.0f} for: {', '.join(low)} (band {m.band.text()})"
        )
    return notes


def outside_notes(book: Book, t: Tables, locked_n: Mapping[str, float], locked_e: Mapping[str, float]) -> list[str]:
    """Reps outside a band after the division, each with why (locked cards, capacity, or the
    other band and account sizes): the nearest division was kept."""
    notes = []
    avail = book.available_reps
    c = t.count
    out_n = []
    for r in avail:
        n = t.after_n[r.id]
        if c.lower - 1e-6 <= n <= c.upper + 1e-6:
            continue
        if n > c.upper and locked_n.get(r.id, 0.0) > c.upper:
            why = f"{locked_n[r.id]:.0f} held by locked cards and pinned accounts"
            if n > capacity(r):
                why += f", over their capacity {capacity(r):.0f}"
        elif n < c.lower and capacity(r) < c.lower:
            why = f"capacity {capacity(r):.0f}"
        else:
            why = "account sizes or the value band"
        out_n.append(f"{r.name} ({n:.0f}: {why})")
    if out_n:
        notes.append(
            f"count band {c.text()} open cards not met for: {', '.join(sorted(out_n))}; the nearest division is kept"
        )
    if t.value is None:
        return notes
    out_v = []
    for r in avail:
        e = t.after_ev.get(r.id, 0.0)
        v = t.value_of(r.id) or t.value
        if v.lower - 1e-6 * max(v.mean, 1.0) <= e <= v.upper + 1e-6 * max(v.mean, 1.0):
            continue
        if e > v.upper and locked_e.get(r.id, 0.0) > v.upper:
            why = f"{locked_e[r.id]:,.0f} held by locked cards and pinned accounts"
        else:
            why = "the count band, capacity or account sizes"
        own = f"band {v.text(money=True)}, {t.target_text(r.id)}: " if t.target_text(r.id) else ""
        out_v.append(f"{r.name} ({e:,.0f}: {own}{why})")
    if out_v:
        band = "own value bands" if t.policy.value_target == "quota" else f"value band {t.value.text(money=True)}"
        notes.append(f"{band} expected value not met for: {', '.join(sorted(out_v))}; the nearest division is kept")
    return notes
