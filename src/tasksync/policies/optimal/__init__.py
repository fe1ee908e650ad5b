"""Optimal division: one mixed-integer programme over the book (scipy's HiGHS).

Decision variables are ``x[g, r]`` = 1 when group ``g`` (all open managed cards of one account,
or one card with ``keep_accounts_together = false``) goes to rep ``r``. The objective maximises
expected won value with that rep (rep-specific P(win) × value) times ``1 + fit bonus`` (sector
strength, region, hunter/farmer role, CRM account ownership), minus, with ``keep_current_owner``,
``min_gain`` × the card's expected value for every owned card that leaves an available owner.
Constraints, soft with penalties far above any fit gain (settings that cannot be met give the
nearest division and a note naming the reps and why, never a crash):

* one rep per group; a group with a card pinned by label stays with that card's owner (a card a
  person moved by hand is locked alone and does not pull its account along);
* capacity: open cards within ``Rep.capacity`` and open pipeline within ``Rep.capacity_value``;
  a rep already above either never gains and sheds the excess where another rep has room;
* availability: reps who are away get nothing; their cards move when ``move_from_unavailable``;
* count band: each available rep's open cards within ``±band`` of the mean (whole cards);
* value band: each available rep's expected value within ``±value_band`` of the mean of
  available reps (``value_band = 0`` turns it off).

Modules: :mod:`.model` (groups, loads, the scorer), :mod:`.candidates` (candidate reps),
:mod:`.programme` (the (MI)LP), :mod:`.solve` (exact and LP-and-fix), :mod:`.repair` (heuristics),
:mod:`.blocks` (big books in blocks of reps), :mod:`.workers` (a round of blocks, in worker
processes or not), :mod:`.explain` (reasons and notes).

Deterministic by construction: the solver stops on work limits (node limit, relative gap), not on
the clock; ``time_limit`` is a safety net whose fallback is deterministic and announced. A re-run
after applying the plan keeps today's division when it is feasible and within ``stay_tolerance``
of the new one (the small MILP's gap is below it), so an applied plan settles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from tasksync.policies.base import Decision, Decisions, Rules
from tasksync.policies.book import Book, frozen_heap
from tasksync.policies.explain import Tables
from tasksync.policies.optimal.blocks import Split, afresh, rep_independent, replace_owners, split_blocks
from tasksync.policies.optimal.dual import RepPrices, upper_bound
from tasksync.policies.optimal.explain import explain, feasibility_notes, outside_notes
from tasksync.policies.optimal.model import Group, Model, Scorer, Team, build_model
from tasksync.policies.optimal.solve import Limits, Outcome, division_prices, solve_model
from tasksync.policies.optimal.workers import BlockDivision, BlockSolver, as_today, block_key
from tasksync.policies.scoring import WinModel, prioritise, tier_notes
from tasksync.policies.workload import count_band, group_key, movable, value_band, workload_stats
from tasksync.settings import PolicySettings

__all__ = ["OptimalPolicy", "Scorer", "SolveInfo", "workload_stats"]

# Teams of at least 2 × BLOCK_REPS available reps are divided in blocks of about this many reps,
# whatever the number of cards: with hundreds of reps a whole-book model must prune each account's
# candidate reps, and its rounding leaves many reps outside the bands (6,640 cards / 350 reps:
# count max/mean 1.27, value CV 0.39 whole; 1.05 and 0.11 in blocks).
BLOCK_REPS = 100
# ...and of about this many movable groups (accounts) at most: a block's LP grows faster than its
# groups (an afresh 10k-card block: 2.5 s CPU with 4,000 groups, 4.7 s with 6,250), so a book of
# many small accounts is divided in smaller blocks (100k cards / 1,000 reps: 68-69 reps a block on the
# synthetic book, 44-45 on the real-shaped one).
BLOCK_GROUPS = 3_000
BLOCK_ROUNDS = 6  # rounds of a blocked division on the book as the last round leaves it, at most


@dataclass
class SolveInfo:
    """What the last :meth:`OptimalPolicy.decide` did (for benchmarks and tests)."""

    method: str = ""
    status: str = ""
    groups: int = 0  # groups in the model
    variables: int = 0
    objective: float = 0.0  # value of the full objective for the chosen division
    seconds: float = 0.0
    moved: int = 0  # cards whose owner changes
    bound: float | None = None  # exact mode: the solver's bound on the objective (≥ the optimum)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase


def _stays_with(g: Group, owner: int) -> int | None:
    """The rep (index) :meth:`OptimalPolicy.stay_if_close` keeps a group with: its owner when it
    owns every card of the group (None: the solver's choice stands)."""
    return owner if owner >= 0 and all(i.owner == g.owner for i in g.items) else None


def _outside(m: Model, n: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per rep: outside the count band or the value band under loads ``n``, ``e``."""
    out: np.ndarray = (m.count_violation(n) > 1e-6) | (m.value_violation(e) > 1e-6 * max(float(e.mean()), 1.0))
    return out


def _owners(m: Model, choice: np.ndarray) -> dict[str, str]:
    """Item key -> rep for the groups ``choice`` assigns."""
    return {i.key: m.reps[int(r)] for g, r in zip(m.groups, choice.tolist(), strict=True) if r >= 0 for i in g.items}


def block_size(book: Book, p: PolicySettings) -> int:
    """Available reps per block: ``BLOCK_REPS`` at most, fewer when the book has more than
    ``BLOCK_GROUPS`` movable groups per ``BLOCK_REPS`` reps. Depends on the reps and the cards,
    never on who owns what among the available reps, so the book a plan leaves is split alike."""
    avail = {r.id for r in book.available_reps}
    groups = len({group_key(i, p) for i in book.items if movable(i, avail, p)})
    if not groups:
        return BLOCK_REPS
    return max(1, min(BLOCK_REPS, BLOCK_GROUPS * len(avail) // groups))


def fit_model(book: Book, p: PolicySettings) -> WinModel:
    return WinModel.fit(
        book.crm.history,
        book.crm,
        p.smoothing,
        today=book.today,
        stage_order=p.stage_order,
        stage_weight=p.stage_weight,
    )


class OptimalPolicy:
    """Whole-book division by mixed-integer programming; priorities by expected value."""

    name: ClassVar[str] = "optimal"

    def __init__(self, exact: bool = False) -> None:
        # exact: every group with every rep in one MILP, zero gap (for benchmarks).
        self.exact = exact
        self.stay_tolerance = 0.005  # relative objective gain below which today's division is kept
        self.info = SolveInfo()
        self._prices: RepPrices | None = None  # the rep prices of the last LP solved (:meth:`kept`)

    def limits(self, p: PolicySettings, polish: bool = True) -> Limits:
        return Limits(exact=self.exact, time_limit=p.time_limit, polish=polish)

    def decide(self, book: Book, rules: Rules) -> Decisions:
        t0 = time.perf_counter()
        p = rules.policy
        wm = fit_model(book, p)
        out = Decisions(notes=[*p.deprecation_notes(), *tier_notes(rules.priority)], model=wm)
        self.info = SolveInfo()
        self._prices = None
        decided: dict[str, str | None] = {}
        with frozen_heap():  # the book's objects out of the cycle collector's way
            if not book.available_reps:
                out.notes.append("no available rep is on the board: owners left unchanged")
                self.info.method = "none"
            else:
                models = self.divide(book, p, wm, out)
                if len(models) == 1 and not self.exact:
                    models = self.settle(book, p, wm, models[0])
                decided = self.finish_division(book, p, wm, models, out)
            self.info.moved = sum(1 for i in book.items if decided.get(i.key) not in (None, i.owner))
            reasons = dict(out.by_key)
            for key, (tier, score, why) in prioritise(book, decided, rules.priority, wm).items():
                old = reasons.get(key)
                out.by_key[key] = Decision(decided.get(key), tier, score, old.reason if old else None, why)
        self.info.seconds = time.perf_counter() - t0
        return out

    def divide(self, book: Book, p: PolicySettings, wm: WinModel, out: Decisions) -> list[tuple[Model, np.ndarray]]:
        """One model and its division, or one per block of reps on big books."""
        if not self.exact and len(book.available_reps) >= 2 * BLOCK_REPS:
            return self.divide_blocks(book, p, wm, out)
        m = None
        if not self.exact:  # the model the first pass builds: today's division may be proved
            t1 = time.perf_counter()
            m = build_model(book, p, wm, False)
            self.info.phases["model"] = self.info.phases.get("model", 0.0) + time.perf_counter() - t1
            t1 = time.perf_counter()
            known = self.kept(book, p, wm, m)
            self.info.phases["settle check"] = self.info.phases.get("settle check", 0.0) + time.perf_counter() - t1
            if known is not None:
                out.notes.extend(feasibility_notes(m, {r.id: r.name for r in book.crm.reps}))
                self.info.method, self.info.status = "kept", "proved"
                self.info.groups = sum(1 for h in m.held if not h)
                self.info.objective = m.objective(known[1])
                return [known]
        return [self.divide_one(book, p, wm, out, model=m)]

    def divide_blocks(
        self, book: Book, p: PolicySettings, wm: WinModel, out: Decisions, rounds: int = BLOCK_ROUNDS
    ) -> list[tuple[Model, np.ndarray]]:
        """A big book in blocks of reps (:mod:`.blocks`), settled like a whole book: split and
        solve every block against the team's centres, then again on the book as that division
        leaves it (blocks and centres recomputed), until a round moves nothing. All deterministic,
        so the next real run, on the book as the plan leaves it, computes that last round and moves
        nothing. A block whose sub-book and centres are those of the round before is not solved
        again. The last round's models are returned with today's cards (reasons cite today)."""
        size = block_size(book, p)
        owners: dict[str, str] = {}
        done: dict[tuple[object, ...], BlockDivision] = {}
        current = book
        last: list[BlockDivision] = []
        done_rounds = 0
        base = rep_independent(book, wm)  # the same in every round
        with BlockSolver(self, p, wm) as solver:
            for done_rounds in range(1, rounds + 1):  # noqa: B007 - reported after the loop
                split = split_blocks(current, p, wm, size, base)
                keys, last = self.round_of_blocks(split, p, solver, done)
                done = dict(zip(keys, last, strict=True))
                again: dict[str, str] = {}
                for blk in last:
                    again.update(_owners(blk.model, blk.choice))
                today = {i.key: i.owner for i in current.items}
                if all(today.get(key) == o for key, o in again.items()):
                    break
                owners.update(again)
                current = replace_owners(book, owners)
        self.info.method = f"blocks({len(last)}) in {done_rounds} rounds"
        self.info.status = ",".join(sorted({blk.status for blk in last}))
        self.info.groups = sum(sum(1 for h in blk.model.held if not h) for blk in last)
        self.info.variables = sum(blk.variables for blk in last)
        self.info.objective = sum(blk.model.objective(blk.choice) for blk in last)
        for blk in last:
            out.notes.extend(n for n in blk.notes if n not in out.notes)
        items = {i.key: i for i in book.items}
        return [as_today(blk.model, blk.choice, items, owners) for blk in last]

    def round_of_blocks(
        self, split: Split, p: PolicySettings, solver: BlockSolver, done: Mapping[tuple[object, ...], BlockDivision]
    ) -> tuple[list[tuple[object, ...]], list[BlockDivision]]:
        """The divisions of a round's blocks (and their keys): those in ``done`` are not solved
        again. When the split's centre is a guess (cards nobody available owns), the blocks are
        divided in batches of 1, 2, 4, 8, … blocks, each around the centre the divisions before it
        show (:meth:`.Split.calibrated`; from the third batch on, only the batches divided around
        a centre so shown count): the round's divisions then sit nearer the centre of the book
        they leave, and the next round moves less (real-shaped 100k book: 4 rounds -> 3).
        Batches of a fixed size, whatever the number of worker processes: the same plan."""
        keys: list[tuple[object, ...]] = []
        out: list[BlockDivision] = []
        n = len(split.books)
        at, start, batch = split, 0, 1
        shown: list[int] = []
        held = 0.0
        while start < n:
            part = list(range(start, n if not split.guessed else min(start + batch, n)))
            part_keys = [block_key(split.books[b], at) for b in part]
            todo = [b for b, key in zip(part, part_keys, strict=True) if key not in done]
            solved = dict(zip(todo, solver.solve([split.books[b] for b in todo], at, split.books), strict=True))
            blocks = [solved[b] if b in solved else done[key] for b, key in zip(part, part_keys, strict=True)]
            keys.extend(part_keys)
            out.extend(blocks)
            if start <= 1:  # the first batch's, then only those around a shown centre
                shown, held = [], 0.0
            shown.extend(part)
            held += sum(float(blk.model.loads_for(blk.choice)[2].sum()) for blk in blocks)
            at = split.calibrated(shown, held, p.value_band)
            start, batch = start + len(part), 2 * batch
        return keys, out

    def block(
        self, sub: Book, p: PolicySettings, wm: WinModel, team: Team, value_band: float, stay_band: float
    ) -> BlockDivision:
        """One block of a big book divided against the team's centres within ``value_band``, in one
        pass (:func:`afresh`: with every group free, or with the groups nothing asks to move held);
        today's division is kept when it holds the wider ``stay_band`` and is close enough
        (:meth:`stay_if_close`). A second pass freeing the held groups when a rep is left outside
        a band is what the next round does, on the whole book, only when something moved."""
        notes = Decisions()
        pb = p.model_copy(update={"value_band": value_band})
        before = self.info.variables
        free = frozenset(range(len(sub.available_reps))) if afresh(sub, team, p) else frozenset()
        m, choice = self.divide_one(sub, pb, wm, notes, team, free, passes=1, polish=False)
        if stay_band > value_band:
            choice = self.stay_if_close(replace(m, value_band=stay_band), choice)
        return BlockDivision(m, choice, notes.notes, self.info.status, self.info.variables - before)

    def divide_one(
        self,
        book: Book,
        p: PolicySettings,
        wm: WinModel,
        out: Decisions,
        team: Team | None = None,
        unhold: frozenset[int] = frozenset(),
        passes: int = 3,
        model: Model | None = None,
        polish: bool = True,
    ) -> tuple[Model, np.ndarray]:
        """Solve (:meth:`solve_passes`; ``model``: the first pass's model, built already; ``polish``:
        the solver's polish of small books) and keep today's division when close
        (:meth:`stay_if_close`); notes and :attr:`info` updated."""
        m, res = self.solve_passes(book, p, wm, team, passes, unhold, model, polish)
        self._prices = res.prices
        names = {r.id: r.name for r in book.crm.reps}
        out.notes.extend(feasibility_notes(m, names))
        out.notes.extend(res.notes)
        self.info.method, self.info.status = res.method, res.status
        self.info.variables += res.variables
        self.info.bound = res.bound
        self.info.groups += sum(1 for h in m.held if not h)
        choice = res.choice if self.exact else self.stay_if_close(m, res.choice)
        self.info.objective += m.objective(choice)
        return m, choice

    def settle(
        self, book: Book, p: PolicySettings, wm: WinModel, first: tuple[Model, np.ndarray], rounds: int = 3
    ) -> list[tuple[Model, np.ndarray]]:
        """A division that a re-run after applying it leaves as it is: decide again on the book as
        the plan would leave it, until nothing moves (all deterministic, so the next real run, on
        that same book, computes the same). The reasons are then built against today's book.

        Deciding again is skipped where its answer is known without solving: on the very book
        decided last (the division moved nothing), and where :meth:`kept` proves that the decision
        would keep the book as it is."""
        m, choice = first
        owners = _owners(m, choice)
        moved = False
        prev = book
        for _ in range(rounds):
            after = replace_owners(book, owners)
            if all(a.owner == b.owner for a, b in zip(after.items, prev.items, strict=True)):
                break  # the book just decided: the same decision again
            t1 = time.perf_counter()
            known = self.kept(after, p, wm, ma := build_model(after, p, wm, False, like=m))  # today's groups
            self.info.phases["settle check"] = self.info.phases.get("settle check", 0.0) + time.perf_counter() - t1
            m2, choice2 = known if known is not None else self.divide_one(after, p, wm, Decisions(), model=ma)
            prev = after
            again = _owners(m2, choice2)
            if all(owners.get(k) == o for k, o in again.items()):
                break
            owners.update(again)
            moved = True
        if not moved:
            return [first]
        ridx = {r: i for i, r in enumerate(m.reps)}
        pick = np.array([ridx.get(owners.get(g.items[0].key) or "", -1) for g in m.groups], dtype=np.int64)
        final = build_model(book, p, wm, False, unhold=frozenset(range(len(m.reps))), like=m, extra=pick)
        ok = all(r < 0 or final.is_candidate(gi, int(r)) for gi, r in enumerate(pick.tolist()))
        same = all(len({owners.get(i.key) for i in g.items}) == 1 for g in final.groups)
        return [(final, pick)] if ok and same else [first]

    def kept(
        self, book: Book, p: PolicySettings, wm: WinModel, m: Model | None = None
    ) -> tuple[Model, np.ndarray] | None:
        """The model :meth:`divide_one` builds for ``book`` (``m`` when given) and today's division,
        when it is proved that :meth:`divide_one` would keep today's division (None: not proved;
        solve to know).

        :meth:`stay_if_close` keeps today's division, when it is within capacity, against any new
        one that is not (and against one that is, when within ``stay_tolerance`` of its objective);
        :meth:`solve_passes` stops after one pass when the division kept holds both bands. The
        objective of a division within capacity is at most the Lagrangian bound at the last LP's
        rep prices (:func:`.dual.upper_bound`: valid for any prices, and near the LP's optimum at
        those of a book one plan away). So today's division, within capacity and both bands and
        within ``stay_tolerance`` of that bound (less a margin for rounding), is what solving
        would return: the proof replaces the solve, never changes its answer (the 10k-card books:
        0.3 s CPU instead of 1.2 s)."""
        if m is None:
            m = build_model(book, p, wm, self.exact)
        stay = np.array([-1 if o is None else o for o in map(_stays_with, m.groups, m.owner.tolist())], dtype=np.int64)
        if (stay < 0).any() or not all(m.is_candidate(gi, int(r)) for gi, r in enumerate(stay.tolist())):
            return None
        n_over, v_over = m.excess(stay)
        n, _, e = m.loads_for(stay)
        if n_over > 0 or v_over > 0 or _outside(m, n, e).any():
            return None
        old = m.objective(stay)
        if self._prices is None or not self._close(old, upper_bound(m, self._prices)):
            # No LP solved yet, or not close enough to the bound at its prices: at this book's own
            # LP prices (its LP from today's columns: a few pivots when today's division is near
            # its optimum).
            own = division_prices(m, stay, self.limits(p))
            if own is None or not self._close(old, upper_bound(m, own)):
                return None
        return m, stay

    def _close(self, objective: float, bound: float) -> bool:
        """Whether ``objective`` is within ``stay_tolerance`` of ``bound`` (less a margin for
        rounding): then no division's objective can exceed it by more."""
        return math.isfinite(bound) and objective >= bound - 0.9 * self.stay_tolerance * abs(bound)

    def solve_passes(
        self,
        book: Book,
        p: PolicySettings,
        wm: WinModel,
        team: Team | None,
        passes: int = 3,
        unhold: frozenset[int] = frozenset(),
        model: Model | None = None,
        polish: bool = True,
    ) -> tuple[Model, Outcome]:
        """Solve; while the division leaves a rep outside a band and some groups were held (nothing
        asked them to move today), solve again with every group free: the division may have pushed
        a rep out of a band that only trades with held groups can mend. Without this a second run,
        seeing that rep out of band, would move cards: the plan would not settle. The groups of the
        reps (indexes) in ``unhold`` are free from the first pass; ``polish``: the solver's polish of
        small books (:class:`~.solve.Limits`)."""
        best: tuple[Model, Outcome] | None = None
        last: np.ndarray | None = None  # the pass before's division: it seeds the next pass's LP
        for k in range(passes):
            t1 = time.perf_counter()
            m = model if k == 0 and model is not None else build_model(book, p, wm, self.exact, team, unhold)
            self.info.phases["model"] = self.info.phases.get("model", 0.0) + time.perf_counter() - t1
            t1 = time.perf_counter()
            res = solve_model(m, self.limits(p, polish), last)
            last = res.choice
            self.info.phases["solve"] = self.info.phases.get("solve", 0.0) + time.perf_counter() - t1
            if best is None or m.objective(res.choice) >= best[0].objective(best[1].choice) - 1e-9:
                best = (m, res)
            # The division kept (today's when the new one is no better) is what a re-run sees.
            n, _, e = m.loads_for(res.choice if self.exact else self.stay_if_close(m, res.choice))
            out = _outside(m, n, e)
            held = {int(c[0]) for c, h in zip(m.cand, m.held, strict=True) if h}
            more = frozenset(held) - unhold if out.any() else frozenset()
            if not more or res.method == "greedy-fallback":
                break
            unhold |= more
        assert best is not None
        return best

    def stay_if_close(self, m: Model, choice: np.ndarray) -> np.ndarray:
        """Keep today's owner for every whole, owned group when that division is less far over a
        capacity than the new one, or as far and its objective (band penalties included) within
        ``stay_tolerance`` of the new one's: LP-and-fix is near-optimal, not exact, and a re-run
        must not reshuffle cards for a gain below the solver's own tolerance (nor between divisions
        that are equally good)."""
        stay = choice.copy()
        for gi, o in enumerate(map(_stays_with, m.groups, m.owner.tolist())):
            if o is not None and m.is_candidate(gi, o):
                stay[gi] = o
        (n_stay, v_stay), (n_new, v_new) = m.excess(stay), m.excess(choice)
        if np.array_equal(stay, choice) or n_stay > n_new or v_stay > v_new + 1e-6:
            return choice
        if n_new > n_stay or v_new > v_stay + 1e-6:  # the new one is further over a capacity
            return stay
        new, old = m.objective(choice), m.objective(stay)
        return stay if old >= new - self.stay_tolerance * abs(new) else choice

    def finish_division(
        self, book: Book, p: PolicySettings, wm: WinModel, models: list[tuple[Model, np.ndarray]], out: Decisions
    ) -> dict[str, str | None]:
        """Bands as used, reasons citing the final tables, and the notes on what was not met."""
        owners: dict[str, str | None] = {}
        for m, choice in models:
            for gi, g in enumerate(m.groups):
                if int(choice[gi]) >= 0:
                    owners.update((i.key, m.reps[int(choice[gi])]) for i in g.items)
        avail = {r.id for r in book.available_reps}
        n_after = sum(1 for i in book.items if (owners.get(i.key) or i.owner) in avail)
        count = models[0][0].band if len(models) == 1 else count_band(n_after / len(avail), p.band)
        probe = Tables(book, wm, p, owners, count, None)
        # In the reps' order, not the set's: a float sum's last bits follow its order.
        ev_mean = sum(probe.after_ev.get(r.id, 0.0) for r in book.available_reps) / len(avail)
        value = value_band(ev_mean, p.value_band) if p.value_band else None
        out.bands["count"] = count
        if value is not None:
            out.bands["value"] = value
        t = probe.with_value(value)
        out.value_targets = dict(t.targets)
        decided = explain(book, p, t, models, out)
        locked_n: dict[str, float] = {}
        locked_e: dict[str, float] = {}
        for i in book.items:
            if i.owner in avail and not movable(i, avail, p):
                locked_n[i.owner] = locked_n.get(i.owner, 0.0) + 1
                locked_e[i.owner] = locked_e.get(i.owner, 0.0) + wm.expected_value(i, i.owner)
        for m, _ in models:  # an account pinned to a rep goes whole to them: it is held there too
            for g in m.groups:
                if g.pinned in avail:
                    locked_n[g.pinned] = locked_n.get(g.pinned, 0.0) + len(g.items)
                    locked_e[g.pinned] = locked_e.get(g.pinned, 0.0) + sum(
                        wm.expected_value(i, g.pinned) for i in g.items
                    )
        out.notes.extend(outside_notes(book, t, locked_n, locked_e))
        return decided

    def evaluate(self, book: Book, rules: Rules, owners: Mapping[str, str | None]) -> float:
        """The full objective (fit value − move cost − band penalties) of a division of ``book``.

        ``owners`` maps item keys to rep ids (missing: current owner). A group is scored with the
        owner of its first card; groups whose owner is away or unknown count as unassigned.
        """
        if not book.available_reps:
            return 0.0
        m = build_model(book, rules.policy, fit_model(book, rules.policy), True)
        ridx = {r: i for i, r in enumerate(m.reps)}
        choice = np.array(
            [ridx.get(owners.get(g.items[0].key) or g.items[0].owner or "", -1) for g in m.groups], dtype=np.int64
        )
        for gi, r in enumerate(choice.tolist()):
            if r >= 0 and not m.is_candidate(gi, r):
                choice[gi] = -1
        return m.objective(choice)
