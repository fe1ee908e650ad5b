"""Expected value and fit of groups with reps, computed when a pass needs them, never stored whole.

A group's expected value with a rep is the sum over its cards of ``WinModel.expected_value(card,
rep)``; its fit is the sum of that times ``1 + fit_bonus(card, rep)``. Both were dicts of every group
with every rep (groups × reps Python floats: over 15 GiB at 100,000 cards and 1,000 reps); here the
per-card factors of those two functions are kept (a few numbers per card and per rep) and any block
of groups × reps is computed from them with numpy, in the same order of operations as the model, so
the figures are the very same floats and the divisions the same as with the dicts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tasksync.crm.records import Rep
from tasksync.policies.book import WorkItem
from tasksync.policies.scoring import WinModel
from tasksync.settings import PolicySettings

__all__ = ["Bools", "Floats", "GroupScores", "Ints", "Scorer"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


class Scorer:
    """Per card: the factors of its win probability and fit bonus with every available rep."""

    def __init__(self, items: Sequence[WorkItem], reps: Sequence[Rep], model: WinModel, p: PolicySettings) -> None:
        self.row = {i.key: k for k, i in enumerate(items)}
        sectors = sorted({i.sector for i in items if i.sector})
        regions = sorted({i.region.casefold() for i in items if i.region})
        s_idx = {s: k for k, s in enumerate(sectors)}
        g_idx = {g: k for k, g in enumerate(regions)}
        r_idx = {r.id: k for k, r in enumerate(reps)}
        n_r = len(reps)
        self.w = (p.sector_weight, p.region_weight, p.role_weight, p.continuity_weight)
        # WinModel.probability: ((sector rate × product lift) × rep lift × rep-sector lift) × (age × stage).
        self.pre = np.array([_before_rep(model, i) for i in items], dtype=np.float64)
        self.post = np.array([model.age_lift(i) * model.stage_lift(i) for i in items], dtype=np.float64)
        self.value = np.array([i.value for i in items], dtype=np.float64)
        # Index -1 (no sector, no region) is a last row of neutral values.
        self.sec = np.array([s_idx[i.sector] if i.sector else -1 for i in items], dtype=np.int64)
        self.reg = np.array([g_idx[i.region.casefold()] if i.region else -1 for i in items], dtype=np.int64)
        self.cust = np.array([1 if i.existing_customer else 0 for i in items], dtype=np.int64)
        self.acct_owner = np.array(
            [r_idx.get(i.account.owner, -1) if i.account is not None and i.account.owner else -1 for i in items],
            dtype=np.int64,
        )
        self.rep_lift = np.array([model.rep.get(r.id, 1.0) for r in reps], dtype=np.float64)
        self.rep_sector = np.ones((len(sectors) + 1, n_r))
        self.strong = np.zeros((len(sectors) + 1, n_r))
        self.covers = np.zeros((len(regions) + 1, n_r))
        self.role = np.zeros((2, n_r))  # row 0: a prospect wants a hunter, row 1: a customer a farmer
        for k, r in enumerate(reps):
            mine = {x.casefold() for x in r.sectors}
            for sec, j in s_idx.items():
                self.rep_sector[j, k] = model.rep_sector.get((r.id, sec), 1.0)
                self.strong[j, k] = 1.0 if sec.casefold() in mine else 0.0
            if r.region and r.region.casefold() in g_idx:
                self.covers[g_idx[r.region.casefold()], k] = 1.0
            if r.role in ("hunter", "farmer"):
                self.role[0 if r.role == "hunter" else 1, k] = 1.0

    def cards(self, rows: Ints, cols: Ints, pairwise: bool = False) -> tuple[Floats, Floats]:
        """(expected value, fit) of cards ``rows`` with reps ``cols``: every card with every rep,
        shape (rows, cols); or with ``pairwise`` card k with rep ``cols[k]``, shape (rows,)."""
        if pairwise:
            sec, reg, cust, own = self.sec[rows], self.reg[rows], self.cust[rows], self.acct_owner[rows]
            lift, rs = self.rep_lift[cols], self.rep_sector[sec, cols]
            strong, covers, role = self.strong[sec, cols], self.covers[reg, cols], self.role[cust, cols]
            pre, post, value, same = self.pre[rows], self.post[rows], self.value[rows], own == cols
        else:
            sec, reg, cust, own = self.sec[rows], self.reg[rows], self.cust[rows], self.acct_owner[rows]
            lift, rs = self.rep_lift[None, cols], self.rep_sector[sec][:, cols]
            strong, covers, role = self.strong[sec][:, cols], self.covers[reg][:, cols], self.role[cust][:, cols]
            pre, post, value = self.pre[rows, None], self.post[rows, None], self.value[rows, None]
            same = own[:, None] == cols[None, :]
        ev = np.clip(pre * lift * rs * post, 0.01, 0.99) * value
        bonus = self.w[0] * strong + self.w[1] * covers + self.w[2] * role + self.w[3] * same
        return ev, ev * (1.0 + bonus)


def _before_rep(model: WinModel, item: WorkItem) -> float:
    """``WinModel.probability`` before the rep's lifts: the sector (or base) rate times the product lift."""
    sector = item.sector
    p = model.sector.get(sector, model.base) if sector else model.base
    if item.deal and item.deal.product:
        p *= model.product.get(item.deal.product, 1.0)
    return p


class GroupScores:
    """Sums over each group's cards (in card order, as ``sum`` adds them) of the scorer's figures."""

    def __init__(self, scorer: Scorer, groups: Sequence[Sequence[WorkItem]]) -> None:
        self.scorer = scorer
        self.lens = np.array([len(g) for g in groups], dtype=np.int64)
        self.starts = np.zeros(len(groups), dtype=np.int64)
        if len(groups):
            self.starts[1:] = np.cumsum(self.lens)[:-1]
        self.rows = np.array([scorer.row[i.key] for g in groups for i in g], dtype=np.int64)

    def _rows(self, gs: Ints) -> tuple[Ints, _Plan]:
        """Card rows of groups ``gs`` (concatenated), and how to add them up per group."""
        lens = self.lens[gs]
        offs = np.zeros(len(gs), dtype=np.int64)
        if len(gs):
            offs[1:] = np.cumsum(lens)[:-1]
        pos = np.repeat(self.starts[gs] - offs, lens) + np.arange(int(lens.sum()), dtype=np.int64)
        steps: list[tuple[Ints, Ints]] = []
        longest = int(lens.max(initial=0))
        if longest > 1:
            by_len = np.argsort(-lens, kind="stable")
            desc = -lens[by_len]  # ascending
            for j in range(1, longest):
                g = by_len[: int(np.searchsorted(desc, -j, side="left"))]  # the groups longer than j
                steps.append((g, offs[g] + j))
        return self.rows[pos], (offs, steps)

    def block(self, gs: Ints, cols: Ints) -> tuple[Floats, Floats]:
        """(expected value, fit) of groups ``gs`` with reps ``cols``: shape (gs, cols) each."""
        rows, plan = self._rows(gs)
        ev, fit = self.scorer.cards(rows, cols)
        return _sums(ev, plan), _sums(fit, plan)

    def pairs(self, gs: Ints, cols: Ints) -> tuple[Floats, Floats]:
        """(expected value, fit) of group ``gs[k]`` with rep ``cols[k]``: shape (gs,) each."""
        rows, plan = self._rows(gs)
        ev, fit = self.scorer.cards(rows, np.repeat(cols, self.lens[gs]), pairwise=True)
        return _sums(ev, plan), _sums(fit, plan)

    def column(self, gs: Ints, col: int) -> tuple[Floats, Floats]:
        """(expected value, fit) of groups ``gs`` with the one rep ``col``: shape (gs,) each."""
        return self.pairs(gs, np.full(len(gs), col, dtype=np.int64))


# Per group, where its first card's row is; then, for each further card j, the groups that have one
# and where its row is.
_Plan = tuple[Ints, list[tuple[Ints, Ints]]]


def _sums(x: Floats, plan: _Plan) -> Floats:
    """Per group, the sum of its rows of ``x`` added one after the other (the floats ``sum`` gives;
    numpy's pairwise summation would differ in the last bits)."""
    offs, steps = plan
    out = x[offs].copy()
    for g, at in steps:
        out[g] += x[at]
    return out
