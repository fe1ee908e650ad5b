"""A deterministic large-neighbourhood polish for small books, after LP-and-fix.

LP-and-fix rounds the LP's few fractional groups with a handful of neighbours; what it cannot do
is re-deal the accounts of two reps that are both at the edge of a band (the value band holds
whole accounts, so an exchange that pays is often of several accounts at once). The polish takes
pairs of reps, re-opens every movable group either of them holds, and solves that small
programme (those groups between those two reps, every other rep's load fixed, the value band's
mean at today's, :mod:`.pair`) exactly: by enumerating every division when the pair has at most
``ENUM_MAX`` movable groups (most pairs of a small book; HiGHS's per-call cost is ~100 times the
enumeration's there), else HiGHS at a node limit. The new division is kept when the whole model's
objective rises and both bands and capacities hold at least as well as before.

Pairs are ranked by what they could gain (the fit value each rep's groups would have with the
other); each round tries them in that order, a pair again only when one of its reps changed since
(or it was never tried), until ``PAIR_BUDGET`` pairs in all have been tried. On a book whose
pairs hold dozens of accounts that budget runs out long before every pair has been tried (a
HiGHS call per pair), so a second stage goes on with narrow re-deals: the same pairs, in the same
order, each re-opening only the ``NARROW_GROUPS`` groups that would gain most by changing sides
(half from each rep), every other group where it is; those programmes are enumerated, so
``NARROW_BUDGET`` of them cost about what a few dozen HiGHS calls do.

Last, ejection chains and cyclic exchanges over many reps at once (:mod:`.exchange`): the moves
in which three or more reps each gain one account and give another, which no pair's re-division
holds the bands for. After each round of chains, narrow re-deals of the pairs of the reps the
chains touched; ``EXCHANGE_ROUNDS`` rounds at most. On small books (at most
:data:`.neighbourhood.WHOLE_MAX` (group, rep) columns), last of all the whole book's MILP from that
division at a node limit (:func:`.neighbourhood.whole_book`): every group among every rep at once;
on mid-size ones (at least :data:`.neighbourhood.REDIVIDE_MIN` columns) exact re-divisions of five
reps at a time (:func:`.neighbourhood.redivide`, ``POLISH_NEIGHBOURHOODS`` of them), then the pairs
of the reps they touched; from :data:`.neighbourhood.EDGE_MIN` columns, then the reps at the value
band's lower edge with the reps inside it (:func:`.neighbourhood.reopen_edge`), then their pairs.
Fixed round, pair, chain and node counts: the answer never depends on the clock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tasksync.policies.optimal import neighbourhood as nb
from tasksync.policies.optimal.exchange import exchange
from tasksync.policies.optimal.model import Loads, Model
from tasksync.policies.optimal.neighbourhood import (
    NEIGHBOURHOOD_REPS,
    movable_columns,
    redivide,
    reopen_edge,
    whole_book,
)
from tasksync.policies.optimal.pair import ENUM_MAX, by_enumeration, by_highs, pair_programme

__all__ = ["NARROW_BUDGET", "NARROW_GROUPS", "PAIR_BUDGET", "POLISH_NODES", "POLISH_ROUNDS", "holds", "polish"]

POLISH_ROUNDS = 8  # rounds over the pairs (the polish ends sooner when no pair is left to try)
PAIR_BUDGET = 300  # pairs re-divided in all (the most promising first in each round): a work limit
POLISH_NODES = 200  # branch-and-bound nodes per pair's programme
# The narrow re-deals after PAIR_BUDGET: groups re-opened per pair (enumerated: 2^12 divisions),
# pairs in all and rounds over them. Measured on the bench's books: 12 groups reach what 14 do
# (+0.09-0.11% objective on the 664- and 2,000-card books) for less CPU, 10 fall short; 3,000
# pairs let the 2,000-card book reach its narrow local optimum (about 2,100 pairs).
NARROW_GROUPS = 12
NARROW_BUDGET = 3_000
NARROW_ROUNDS = 20
# Then up to EXCHANGE_ROUNDS rounds of ejection chains (:mod:`.exchange`), each followed by narrow
# re-deals of the pairs of the reps the chains touched, AFTER_CHAINS_BUDGET pairs at most.
EXCHANGE_ROUNDS = 3
AFTER_CHAINS_BUDGET = 1_000
# Last, on mid-size books (at least :data:`.neighbourhood.REDIVIDE_MIN` columns, where the whole
# book's MILP, :data:`.neighbourhood.WHOLE_MAX`, does not run):
# exact re-divisions of NEIGHBOURHOOD_REPS reps at a time (:func:`.neighbourhood.redivide`), at
# most POLISH_NEIGHBOURHOODS of them at POLISH_NEIGHBOURHOOD_NODES nodes each, then narrow
# re-deals of the pairs of the reps they touched. Measured on the 664-card bench book: the third
# neighbourhood gains +0.023% (20 nodes find what 50 do, 10 only +0.019%), for about 1 s of CPU.
POLISH_NEIGHBOURHOODS = 3
POLISH_NEIGHBOURHOOD_NODES = 20


def polish(m: Model, choice: np.ndarray, rounds: int = POLISH_ROUNDS, budget: int = PAIR_BUDGET) -> int:
    """Improve ``choice`` (in place) by exact re-divisions of pairs of reps, at most ``budget``
    pairs in all (then narrow ones), then by chains over many reps; returns the re-divisions and
    rounds of chains kept. Never lowers the objective, never widens a band or capacity violation."""
    n_r = len(m.reps)
    free = ~np.asarray(m.held, dtype=bool)
    if n_r < 2 or not free.any():
        return 0
    kept = _pair_rounds(m, choice, free, rounds, budget, 0)
    kept += _pair_rounds(m, choice, free, NARROW_ROUNDS, NARROW_BUDGET, NARROW_GROUPS)
    for _ in range(EXCHANGE_ROUNDS):  # chains over many reps, then the pairs they opened up
        before = choice.copy()
        if not exchange(m, choice):
            break
        kept += 1
        kept += _pair_rounds(
            m, choice, free, NARROW_ROUNDS, AFTER_CHAINS_BUDGET, NARROW_GROUPS, _touched(before, choice, n_r)
        )
    if whole_book(m, choice):  # small books: every group among every rep by one MILP from here
        kept += 1
    elif (cols := movable_columns(m)) >= nb.REDIVIDE_MIN:  # mid-size books: a few reps at a time, then their pairs
        kept += _then_pairs(
            m,
            choice,
            free,
            lambda: redivide(m, choice, NEIGHBOURHOOD_REPS, POLISH_NEIGHBOURHOODS, POLISH_NEIGHBOURHOOD_NODES),
        )
        if cols >= nb.EDGE_MIN:  # the value band's lower edge with its interior, then their pairs
            kept += _then_pairs(m, choice, free, lambda: reopen_edge(m, choice))
    return kept


def _then_pairs(m: Model, choice: np.ndarray, free: np.ndarray, step: Callable[[], int]) -> int:
    """Run ``step`` (re-divisions of ``choice`` in place; it returns those kept), then narrow
    re-deals of the pairs of the reps it touched; returns the re-divisions kept in all."""
    before = choice.copy()
    done = step()
    if done:
        touched = _touched(before, choice, len(m.reps))
        done += _pair_rounds(m, choice, free, NARROW_ROUNDS, AFTER_CHAINS_BUDGET, NARROW_GROUPS, touched)
    return done


def _touched(before: np.ndarray, choice: np.ndarray, n_r: int) -> np.ndarray:
    """Per rep: True when it gave or took a group between ``before`` and ``choice``."""
    moved = np.flatnonzero(before != choice)
    touched = np.zeros(n_r, dtype=bool)
    touched[before[moved]] = True
    touched[choice[moved]] = True
    return touched


def _pair_rounds(
    m: Model,
    choice: np.ndarray,
    free: np.ndarray,
    rounds: int,
    budget: int,
    most: int,
    changed: np.ndarray | None = None,
) -> int:
    """Rounds of re-deals over the ranked pairs, at most ``budget`` pairs in all, each re-opening at
    most ``most`` groups (0: all of the pair's); returns the re-deals kept. ``changed``: the reps
    whose pairs are to be tried (None: every pair), then those whose groups change."""
    kept = 0
    # Reps whose groups changed since their pairs were tried.
    every = changed is None  # then a pair never tried is tried too
    changed = np.ones(len(m.reps), dtype=bool) if changed is None else changed.copy()
    tried: set[tuple[int, int]] = set()
    now = m.loads_for(choice)
    for _ in range(rounds):
        pairs = [
            (a, b)
            for a, b in _ranked_pairs(m, choice, free)
            if changed[a] or changed[b] or (every and (a, b) not in tried)
        ]
        if not pairs or budget <= 0:  # every pair tried since its reps last changed: a local optimum
            break
        changed[:] = False
        for a, b in pairs[:budget]:
            budget -= 1
            tried.add((a, b))
            if _redeal(m, choice, free, a, b, most, now):
                changed[[a, b]] = True
                kept += 1
                now = m.loads_for(choice)
    return kept


def _ranked_pairs(m: Model, choice: np.ndarray, free: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of reps (a < b), most promising first: the fit value the groups of each would gain
    with the other, summed over the groups that would (ties: lowest reps)."""
    n_r = len(m.reps)
    g = np.flatnonzero(free & (choice >= 0))
    here = m.net_d[g, choice[g]]
    gain = np.where(np.isfinite(m.net_d[g]), np.maximum(m.net_d[g] - here[:, None], 0.0), 0.0)
    by = np.zeros((n_r, n_r))
    np.add.at(by, choice[g], gain)  # by[a, b]: what a's groups would gain with b
    pot = by + by.T
    a, b = np.triu_indices(n_r, 1)
    score = pot[a, b]
    order = np.lexsort((b, a, -score))
    return [(int(a[k]), int(b[k])) for k in order if score[k] > 0]


def _redeal(
    m: Model, choice: np.ndarray, free: np.ndarray, a: int, b: int, most: int = 0, now: Loads | None = None
) -> bool:
    """Re-divide the movable groups of reps ``a`` and ``b`` between them (at most ``most`` of them,
    :func:`_narrow`; 0: all; ``now``: the loads under ``choice``); True when kept."""
    mine = np.flatnonzero(free & ((choice == a) | (choice == b)))
    sub = mine[(m.pos_d[mine, a] >= 0) & (m.pos_d[mine, b] >= 0)]
    if most and len(sub) > most:
        sub = _narrow(m, choice, sub, a, b, most)
    if len(sub) < 2:
        return False
    x = _pair_division(m, choice, sub, a, b, now)
    if x is None:
        return False
    trial = choice.copy()
    trial[sub] = np.where(x, a, b)
    if np.array_equal(trial[sub], choice[sub]):
        return False
    before, after = m.objective(choice), m.objective(trial)
    if after <= before + 1e-9 * max(abs(before), 1.0) or not holds(m, trial, choice):
        return False
    choice[sub] = trial[sub]
    return True


def _narrow(m: Model, choice: np.ndarray, sub: np.ndarray, a: int, b: int, most: int) -> np.ndarray:
    """The ``most`` groups of ``sub`` (sorted) that would gain most fit value by changing sides:
    half from each rep (fewer when one holds fewer, the rest from the other); ties: lowest group."""
    d = m.net_d[sub, a] - m.net_d[sub, b]
    at_a = choice[sub] == a
    gain = np.where(at_a, -d, d)
    rank = np.lexsort((sub, -gain))  # best first
    first_a, first_b = rank[at_a[rank]], rank[~at_a[rank]]
    half = most // 2
    take_a = min(len(first_a), max(half, most - len(first_b)))
    pick = np.r_[first_a[:take_a], first_b[: most - take_a]]
    out: np.ndarray = np.sort(sub[pick])
    return out


def _pair_division(
    m: Model, choice: np.ndarray, sub: np.ndarray, a: int, b: int, now: Loads | None = None
) -> np.ndarray | None:
    """The best division of groups ``sub`` between reps ``a`` and ``b`` (True: to ``a``), every
    other load fixed and the value band's mean at today's (:mod:`.pair`): enumerated exactly up to
    ``ENUM_MAX`` groups, else HiGHS at ``POLISH_NODES``. None when HiGHS finds no division."""
    prog = pair_programme(m, choice, sub, a, b, now)
    return by_enumeration(prog) if prog.k <= ENUM_MAX else by_highs(prog, POLISH_NODES)


def holds(m: Model, trial: np.ndarray, choice: np.ndarray) -> bool:
    """Both bands and both capacities hold under ``trial`` at least as well as under ``choice``."""
    if m.feasible(trial):
        return True
    if m.feasible(choice):
        return False
    (n1, v1), (n0, v0) = m.excess(trial), m.excess(choice)
    l1, l0 = m.loads_for(trial), m.loads_for(choice)
    return bool(
        n1 <= n0
        and v1 <= v0 + 1e-6
        and m.count_violation(l1[0]).sum() <= m.count_violation(l0[0]).sum() + 1e-9
        and m.value_violation(l1[2]).sum() <= m.value_violation(l0[2]).sum() + 1e-6
    )
