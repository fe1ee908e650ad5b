"""Solving the model: exactly (one MILP), or by LP-and-fix for everyday use.

LP-and-fix solves the LP relaxation (HiGHS), keeps the groups it assigns integrally (nearly all:
an assignment LP has at most one fractional group per binding rep row), solves the fractional
ones plus a few small groups of the reps they touch as a small MILP, places any left greedily
and closes band gaps. Beyond ``LP_MAX`` candidate pairs, Lagrangian prices replace the LP.

From ``COLGEN_MIN`` candidate pairs the LP is solved by column generation (:func:`solve_lp`): a
restricted LP over each group's best columns, its owner's and a greedy division's, grown by the
columns that price in under its duals, from the previous basis, until none does. Its optimum is
the whole LP's; the LP of a book as a plan left it (the settle pass) starts at its answer. Above
``SMALL_MOVERS`` movers (a whole book: the value band's mean a variable) the LP is solved instead
from a basis dual feasible at the prices of a dual path (:mod:`.crash`), with column generation
as its fallback.

Every limit that shapes the answer is a deterministic work limit (HiGHS node limit, relative
gap, fixed round counts). ``time_limit`` is only a safety net: when the solver hits it, its
time-dependent incumbent is discarded, the deterministic greedy division is used instead, and
the notes say so with the distance from the solver's bound.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult, milp
from scipy.sparse import csc_array, csr_array

try:  # HiGHS with warm starts (added columns keep the basis): scipy ≥ 1.15 bundles it.
    from scipy.optimize._highspy._core import HighsLp, HighsSparseMatrix, MatrixFormat, _Highs
except ImportError:  # pragma: no cover - older scipy: the full LP through milp
    _Highs = None

from tasksync.policies.optimal import crash
from tasksync.policies.optimal.dual import RepPrices, lagrangian_columns, lp_prices
from tasksync.policies.optimal.model import Loads, Model
from tasksync.policies.optimal.native import quiet_solver
from tasksync.policies.optimal.polish import polish
from tasksync.policies.optimal.programme import Programme, build_programme
from tasksync.policies.optimal.repair import greedy, improve, prices, repair, shed, swap, take

__all__ = ["LP_MAX", "Limits", "Outcome", "division_prices", "solve_lp", "solve_model"]

LP_MAX = 120_000  # candidate pairs above which Lagrangian prices replace the LP
NEIGHBOURS = 1  # small groups per rep re-opened around the LP's fractional groups...
NEIGHBOURS_SMALL = 4  # ...and on books of at most SMALL_MOVERS movers, where more freedom pays
SMALL_MOVERS = 2_000  # (objective +0.7-1.0% on the bench's 664-2,000-card books for ~1 s CPU)
SEED_TOP = 2  # columns per group in the first restricted LP: its best by net score (and its owner)
SEED_TOP_BIG = 1  # ...above SMALL_MOVERS movers, and only for a group without an owner column
COLGEN_MIN = 20_000  # candidate pairs below which the LP is solved whole (nothing to gain)
ADD_PER_ROUND = 3_000  # columns added per pricing round (at least one per group that has one)
COLGEN_ROUNDS = 40  # pricing rounds before the remaining columns are all added (work limit)
# HiGHS options of the rounding MILP above SMALL_MOVERS movers. Its root reduced-cost heuristic
# took half of that MILP's time on the 10k books (synthetic 0.38 -> 0.19 s CPU, real-shaped 0.31 ->
# 0.14 s) and the division came out no worse without it (objective +0.08% and +0.01%); on the
# 1k-2k books it found better roundings (objective 0.02-0.14% lower without it), so they keep it.
# Nor RINS there: on eight 10k books (both kinds, seeds 0-3) the same divisions but one (+0.010%)
# for 0.08 s less CPU per decision (the rounding 3.1-3.4 -> 2.5-2.8 s over the eight).
BIG_ROUNDING: dict[str, float | bool | int] = {
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_rins": False,
}
LAGRANGE_SEED = True  # the first restricted LP also holds the columns the Lagrangian prices pick


@dataclass(frozen=True)
class Limits:
    exact: bool = False
    exact_gap: float = 1e-4  # relative gap at which the exact MILP stops (its bound is reported)
    mip_gap: float = 2e-3  # relative gap at which the small MILP stops
    # Branch-and-bound nodes for the small MILP (deterministic). 1: its root node, where HiGHS's
    # heuristics find the incumbent; 500 nodes found no better division on any bench book and took
    # 67 s CPU on a 350-rep book's 2,400-binary rounding.
    node_limit: int = 1
    time_limit: float | None = None  # safety net only, in seconds
    polish: bool = True  # the polish of books of at most SMALL_MOVERS movers (off: a block of a big book)


@dataclass
class Outcome:
    choice: np.ndarray
    method: str
    status: str
    variables: int = 0
    notes: list[str] = field(default_factory=list)
    bound: float | None = None  # exact mode: the solver's bound on the full objective (maximised)
    prices: RepPrices | None = None  # the LP's rep prices (column generation only)


def _run(
    p: Programme, limits: Limits, gap: float, nodes: int | None, started: float, big: bool = False
) -> tuple[OptimizeResult, bool]:
    """HiGHS on ``p``; also whether the safety-net time limit stopped it. ``big``: the rounding
    MILP of a book of more than ``SMALL_MOVERS`` movers, run without HiGHS's root reduced-cost
    heuristic (see ``BIG_ROUNDING``)."""
    opts: dict[str, float | bool | int] = {"presolve": True, "mip_rel_gap": gap}
    if nodes is not None:
        opts["node_limit"] = nodes
    if big:
        opts.update(BIG_ROUNDING)
    if limits.time_limit is not None:
        opts["time_limit"] = max(limits.time_limit - (time.perf_counter() - started), 0.05)
    with warnings.catch_warnings():  # scipy passes HiGHS's own options on, with a warning
        warnings.filterwarnings("ignore", "Unrecognized options", RuntimeWarning)
        with quiet_solver():
            res = milp(p.c, constraints=p.constraints, integrality=p.integrality, bounds=p.bounds, options=opts)
    timed_out = limits.time_limit is not None and time.perf_counter() - started >= limits.time_limit * 0.98
    return res, bool(timed_out and res.status == 1)


def solve_lp(p: Programme, seed: np.ndarray, limits: Limits, started: float) -> tuple[OptimizeResult, bool, int]:
    """The LP relaxation of ``p`` (no integral columns) by column generation; also whether the
    safety-net time limit stopped it and the pricing rounds run.

    Starts from the x columns in ``seed`` (and every other column), takes the row duals, prices
    every x column left out (reduced cost ``c - Aᵀy``) and adds, per group, the one that improves
    most; re-solves from the previous basis until no column prices in. The answer is then an
    optimum of the whole LP (every column left out has a non-negative reduced cost), found on a
    fraction of its columns. Fixed orders and round counts: deterministic."""
    n_x, n = p.n_x, len(p.c)
    if _Highs is None or n_x < COLGEN_MIN:
        return (*_run(p, limits, 0.0, None, started), 0)
    a = csc_array(p.constraints.A)
    a_t = a.T.tocsr()
    inset = np.ones(n, dtype=bool)
    inset[:n_x] = seed
    cols = np.flatnonzero(inset)
    h = _Highs()
    h.setOptionValue("output_flag", False)
    sub = a[:, cols]
    lp = HighsLp()
    lp.num_col_, lp.num_row_ = len(cols), a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = p.c[cols], p.bounds.lb[cols], p.bounds.ub[cols]
    lp.row_lower_, lp.row_upper_ = p.constraints.lb, p.constraints.ub
    mat = HighsSparseMatrix()
    mat.format_, mat.num_col_, mat.num_row_ = MatrixFormat.kColwise, len(cols), a.shape[0]
    mat.start_, mat.index_, mat.value_ = sub.indptr, sub.indices, sub.data
    lp.a_matrix_ = mat
    h.passModel(lp)
    _rerun(h, limits, started)
    tol = 1e-7 * max(1.0, float(np.abs(p.c).max(initial=0.0)) * 1e-6)
    rounds = 0
    while _status_ok(h):
        d = p.c[:n_x] - a_t[:n_x] @ _tight_duals(p, a_t, cols, h)
        out = np.flatnonzero(~inset[:n_x] & (d < -tol))
        if not len(out):
            break
        rounds += 1
        if rounds > COLGEN_ROUNDS:  # work limit reached: the whole LP, still from this basis
            add = np.flatnonzero(~inset[:n_x])
        else:  # per group, its columns of lowest reduced cost (ties: lowest column), ADD_PER_ROUND in all
            o = out[np.lexsort((out, d[out], p.group[out]))]
            per = max(1, ADD_PER_ROUND // len(np.unique(p.group[o])))
            add = np.sort(o[_ranks(p.group[o], np.arange(len(o), dtype=float)) < per])
        inset[add] = True
        cols = np.r_[cols, add]
        sub = a[:, add]
        lb, ub = p.bounds.lb[add], p.bounds.ub[add]
        h.addCols(len(add), p.c[add], lb, ub, sub.nnz, sub.indptr[:-1], sub.indices, sub.data)
        _rerun(h, limits, started)
    status = h.modelStatusToString(h.getModelStatus())
    timed_out = status == "Time limit reached"
    x = None
    if _status_ok(h):
        x = np.zeros(n)
        x[cols] = np.asarray(h.getSolution().col_value)
    fun = h.getInfo().objective_function_value
    res = OptimizeResult(x=x, status=0 if x is not None else 1, message=status, fun=fun)
    if x is not None:
        res.row_dual = np.asarray(h.getSolution().row_dual)
    return res, timed_out, rounds


def _tight_duals(p: Programme, a_t: csr_array, cols: np.ndarray, h: _Highs) -> np.ndarray:
    """The restricted LP's row duals for pricing, each group row's dual as tight as its answer
    allows: a group whose column sits at its bound 1 (the rest of its row at 0) has its row's dual
    set to make that column's reduced cost 0.

    HiGHS leaves such a dual anywhere between that value and the least reduced cost of the
    group's other columns (a column at its upper bound may have a negative reduced cost), and
    at the loose end every column of the group that is better under the rep prices than that
    bound prices in, round after round, while the objective stands still. The tight duals are as
    valid: the bounds ``x ≤ 1``, ``u ≤ 1`` are implied by the group rows (``Σ x + u = 1``,
    ``x, u ≥ 0``), and without them the tight duals with the same rep duals are dual feasible for
    the restricted LP (the group's other reduced costs only grow) and optimal with its answer
    (complementary). So no column pricing in under them still proves the whole LP optimal; the
    rep rows' duals are HiGHS's own. Real-shaped 10k book: from its optimal support the LP is
    proved optimal at once instead of after a 1.2 s pricing round."""
    sol = h.getSolution()
    # The group rows come first, one per mover: x then u columns.
    return crash.tight_duals(
        np.array(sol.row_dual), np.asarray(sol.col_value), cols, p.c, a_t, p.group, p.n_x, p.count_row
    )


def _rerun(h: _Highs, limits: Limits, started: float) -> None:
    """Run HiGHS (from its current basis) within what is left of the safety-net time limit."""
    if limits.time_limit is not None:
        h.setOptionValue("time_limit", max(limits.time_limit - (time.perf_counter() - started), 0.05))
    h.run()


def _status_ok(h: _Highs) -> bool:
    return bool(h.modelStatusToString(h.getModelStatus()) == "Optimal")


def _ranks(group: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Per x column: its rank by ``cost`` (lowest first, ties by column) within its group."""
    n_x = len(group)
    order = np.lexsort((np.arange(n_x), cost, group))
    first = np.r_[0, np.flatnonzero(group[order][1:] != group[order][:-1]) + 1]
    rank = np.empty(n_x, dtype=np.int64)
    rank[order] = np.arange(n_x) - np.repeat(first, np.diff(np.r_[first, n_x]))
    return rank


def seed_columns(m: Model, movers: list[int], p: Programme, start: np.ndarray) -> np.ndarray:
    """The x columns of the first restricted LP: each group's owner and its rep in ``start`` (a
    greedy division that fills the bands, so that the first LP is not held back by slack and its
    duals are near the final ones), and its ``SEED_TOP`` best by net score. Above ``SMALL_MOVERS``
    movers, a group with an owner column gets no best-by-score columns and one without gets its
    ``SEED_TOP_BIG`` best: few columns per group keep the first LP and its re-solves small, and on
    the book as a plan leaves it (the settle pass) the owners' columns are nearly the LP's optimum
    already (real-shaped 10k book: settle LP 1.0 s -> 0.4 s CPU, first LP 4.9 s -> 4.0 s). Smaller
    books keep the wider seed: it costs little there, and their division stays the one found before
    (LP-and-fix's rounding depends on which optimal vertex the LP lands on)."""
    g_of = np.asarray(movers, dtype=np.int64)[p.group]
    owner: np.ndarray = m.owner[g_of] == p.rep
    rank = _ranks(p.group, p.c[: p.n_x])
    top = rank < SEED_TOP
    if len(movers) > SMALL_MOVERS:
        has_owner = np.zeros(len(movers), dtype=bool)
        has_owner[p.group[owner]] = True
        top = (rank < SEED_TOP_BIG) & ~has_owner[p.group]
    out: np.ndarray = owner | (start[g_of] == p.rep) | top
    return out


def _fallback(m: Model, movers: list[int], choice: np.ndarray, res: OptimizeResult | None, limits: Limits) -> Outcome:
    """The deterministic division used when the safety net stops the solver."""
    choice[movers] = -1
    greedy(movers, m, choice, m.loads_for(choice, skip=set(movers)))
    shed(m, choice)
    repair(m, choice)
    improve(m, choice)
    note = f"the optimiser stopped at the time limit ({limits.time_limit:g} s): a greedy division is used"
    bound = getattr(res, "mip_dual_bound", None) if res is not None else None
    if bound is not None and np.isfinite(bound) and bound != 0:
        ours = m.objective(choice)
        gap = max(ours + bound, 0.0) / abs(bound)  # bound: of the minimised (negated) objective
        note = f"stopped at the time limit ({limits.time_limit:g} s); {gap:.1%} from the bound"
    return Outcome(choice, "greedy-fallback", "time limit", notes=[note])


def solve_model(m: Model, limits: Limits, near: np.ndarray | None = None) -> Outcome:
    """Rep index per group (-1 unassigned), with the method used. ``near``: a division of the same
    groups found before (an earlier pass on the same book) whose columns seed the LP instead of a
    greedy division's (above ``SMALL_MOVERS`` movers, as :func:`seed_columns`). Without one, a book
    of more than ``SMALL_MOVERS`` movers takes the dual path and the crash (:mod:`.crash`); a later
    pass frees held groups, which moves the prices further than the path follows cheaply (a
    real-shaped 10k book's second pass: 5,900 pivots from its prices against 500 in the first),
    while the earlier division's columns put column generation next to its optimum."""
    started = time.perf_counter()
    choice = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    movers = [gi for gi in range(len(m.groups)) if not m.held[gi]]
    if not movers:
        return Outcome(choice, "fixed", "nothing to move")
    fixed = m.loads_for(choice, skip=set(movers))
    if limits.exact:
        prog = build_programme(m, movers, fixed, True)
        res, timed_out = _run(prog, limits, limits.exact_gap, None, started)
        if res.x is None:
            return _fallback(m, movers, choice, res, limits) if timed_out else Outcome(choice, "milp", str(res.message))
        take(m, movers, res.x, prog.group, prog.rep, choice)
        held = sum(m.net(g, int(choice[g])) for g in range(len(m.groups)) if m.held[g])
        bound = held - float(res.mip_dual_bound) if res.mip_dual_bound is not None else None
        status = "optimal" if res.status == 0 else str(res.message)
        return Outcome(choice, "milp", status, len(prog.c), bound=bound)
    n_x = sum(len(m.cand[g]) for g in movers)
    if n_x > LP_MAX:
        prices(m, movers, choice, fixed)
        shed(m, choice)
        repair(m, choice)
        improve(m, choice)
        return Outcome(choice, "prices+repair", "heuristic", n_x)
    prog = build_programme(m, movers, fixed, False)
    if n_x >= COLGEN_MIN and len(movers) > SMALL_MOVERS and near is None and crash.usable(prog, m):
        res, timed_out = _crashed_lp(m, movers, prog, (choice, fixed), limits, started)
    else:
        res, timed_out = _generated_lp(m, movers, prog, (choice, fixed), near, limits, started)
    if timed_out:
        return _fallback(m, movers, choice, res, limits)
    if res.x is None:  # numerical trouble: best fit with room, group by group
        out = _fallback(m, movers, choice, None, limits)
        return Outcome(
            out.choice,
            "greedy-fallback",
            str(res.message),
            len(prog.c),
            [f"the LP failed ({res.message}): greedy division used"],
        )
    frac = take(m, movers, res.x, prog.group, prog.rep, choice)
    duals = getattr(res, "row_dual", None)
    lp_p = lp_prices(prog, duals, m) if duals is not None else None
    method = "lp"
    if frac:
        fixed_ok, method = _fix_fractional(m, movers, frac, prog, res.x, choice, limits, started)
        if not fixed_ok:
            return _fallback(m, movers, choice, res, limits)
    if method.startswith("lp"):  # the LP's own path: the crash's, or column generation's
        method = getattr(res, "method", "lp") + method[2:]
    if repair(m, choice):
        method += "+repair"
    if swap(m, choice):
        method += "+swap"
    if improve(m, choice):  # single moves that raise the objective within both bands
        method += "+improve"
        swap(m, choice)
    if limits.polish and len(movers) <= SMALL_MOVERS and polish(m, choice):  # exact re-divisions of pairs of reps
        method += "+polish"
    return Outcome(choice, method, "optimal" if res.status == 0 else str(res.message), len(prog.c), prices=lp_p)


def _crashed_lp(
    m: Model, movers: list[int], prog: Programme, held: tuple[np.ndarray, Loads], limits: Limits, started: float
) -> tuple[OptimizeResult, bool]:
    """The LP of a big book (more than ``SMALL_MOVERS`` movers) from the dual path's prices (see
    :mod:`.crash`); when its pivots run past ``crash.CRASH_PIVOTS`` (the prices were far from the
    LP's), by column generation instead. Also whether the safety-net time limit stopped it."""
    left = None if limits.time_limit is None else limits.time_limit - (time.perf_counter() - started)
    res = crash.crash_lp(m, prog, *crash.path_prices(m, prog), left)
    if res.message == "Iteration limit reached":
        return _generated_lp(m, movers, prog, held, None, limits, started)  # (not near: a first pass)
    res.method = "path+lp"
    return res, res.message == "Time limit reached"


def _generated_lp(
    m: Model,
    movers: list[int],
    prog: Programme,
    held: tuple[np.ndarray, Loads],
    near: np.ndarray | None,
    limits: Limits,
    started: float,
) -> tuple[OptimizeResult, bool]:
    """The LP by column generation (:func:`solve_lp`) from its seed: each group's best, its owner's
    and a division's columns (``near``'s above ``SMALL_MOVERS`` movers, else a quick greedy one),
    and the columns the Lagrangian prices settle on; also whether the time limit stopped it.
    ``held``: each held group on its rep (the others -1), and the loads of the held groups."""
    start, fixed, n_x = held[0].copy(), held[1], prog.n_x
    if n_x >= COLGEN_MIN:  # a division whose columns seed the first restricted LP
        if near is not None and len(movers) > SMALL_MOVERS:
            start[movers] = near[movers]
        else:  # a quick greedy one
            start[movers] = -1
            greedy(movers, m, start, m.loads_for(start, skip=set(movers)))
    seed = seed_columns(m, movers, prog, start)
    if n_x >= COLGEN_MIN and LAGRANGE_SEED:  # and the columns the Lagrangian prices settle on
        seed |= lagrangian_columns(m, movers, prog, fixed)
    res, timed_out, _ = solve_lp(prog, seed, limits, started)
    return res, timed_out


def division_prices(m: Model, division: np.ndarray, limits: Limits) -> RepPrices | None:
    """The optimal rep prices of ``m``'s LP, solved by column generation from the columns of
    ``division`` (rep index per group) and each group's best; None when the LP is not solved by
    column generation (too small) or not to optimality."""
    movers = [gi for gi in range(len(m.groups)) if not m.held[gi]]
    if not movers or _Highs is None:
        return None
    held = np.array([int(c[0]) if h else -1 for c, h in zip(m.cand, m.held, strict=True)], dtype=np.int64)
    prog = build_programme(m, movers, m.loads_for(held, skip=set(movers)), False)
    if prog.n_x < COLGEN_MIN:
        return None
    res, timed_out, _ = solve_lp(prog, seed_columns(m, movers, prog, division), limits, time.perf_counter())
    duals = getattr(res, "row_dual", None)
    return None if timed_out or duals is None else lp_prices(prog, duals, m)


def _lp_mean(prog: Programme, x_lp: np.ndarray) -> float | None:
    """The value band's mean in the LP's answer (None without a value band)."""
    return None if prog.mean_col is None else float(x_lp[prog.mean_col])


def _fix_fractional(
    m: Model,
    movers: list[int],
    frac: list[int],
    prog: Programme,
    x_lp: np.ndarray,
    choice: np.ndarray,
    limits: Limits,
    started: float,
) -> tuple[bool, str]:
    """Solve the LP's fractional groups, plus a few small groups of each rep they touch, as a small
    MILP (the freedom to swap a small account is what lets integral loads meet the bands). If the
    integral groups leave them no feasible rounding, one MILP over every mover. False: timed out."""
    x = x_lp[: prog.n_x]
    touched = set(prog.rep[np.isin(prog.group, frac) & (x > 1e-6)].tolist())
    sub_set = {movers[j] for j in frac}
    by_rep: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for g in movers:
        if int(choice[g]) in touched and g not in sub_set:
            by_rep[int(choice[g])].append((float(m.count[g]), g))
    near = NEIGHBOURS_SMALL if len(movers) <= SMALL_MOVERS else NEIGHBOURS
    for r in sorted(by_rep):
        sub_set.update(g for _, g in sorted(by_rep[r])[:near])
    sub = sorted(sub_set)
    # A fractional group may go to the reps the LP spread it over (or its owner); a neighbour to
    # its own rep or a rep it shares a fractional group with: a small programme, not the whole book.
    lp_reps: dict[int, set[int]] = defaultdict(set)
    for pos in np.flatnonzero(x > 1e-6).tolist():
        lp_reps[movers[int(prog.group[pos])]].add(int(prog.rep[pos]))
    partners: dict[int, set[int]] = defaultdict(set)
    for j in frac:
        for r in lp_reps[movers[j]]:
            partners[r] |= lp_reps[movers[j]]
    only = {
        g: (lp_reps[g] | partners[next(iter(lp_reps[g]))] if len(lp_reps[g]) == 1 else lp_reps[g])
        | ({int(m.owner[g])} if m.owner[g] >= 0 else set())
        for g in sub
    }
    choice[sub] = -1
    mean_ev = _lp_mean(prog, x_lp)
    prog2 = build_programme(m, sub, m.loads_for(choice, skip=sub_set), True, mean_ev, only)
    res2, timed_out = _run(prog2, limits, limits.mip_gap, limits.node_limit, started, len(movers) > SMALL_MOVERS)
    if timed_out:
        return False, "milp"
    if res2.x is not None:
        rest = take(m, sub, res2.x, prog2.group, prog2.rep, choice)
        _place_rest(m, sub, rest, choice)
        return True, f"lp+milp({len(sub)})"
    if res2.status == 2:  # infeasible rounding (reps over capacity): every mover at once
        choice[movers] = -1
        prog3 = build_programme(m, movers, m.loads_for(choice, skip=set(movers)), True)
        res3, timed_out = _run(prog3, limits, limits.mip_gap, limits.node_limit * 4, started)
        if timed_out:
            return False, "milp"
        if res3.x is not None:
            rest = take(m, movers, res3.x, prog3.group, prog3.rep, choice)
            _place_rest(m, movers, rest, choice)
            return True, "milp"
        take(m, movers, x_lp, prog.group, prog.rep, choice)
    choice[sub] = -1
    greedy(sub, m, choice, m.loads_for(choice, skip=set(sub)))
    return True, "lp+rounding"


def _place_rest(m: Model, sub: list[int], rest: list[int], choice: np.ndarray) -> None:
    """After a rounding MILP over ``sub``: its groups not integral (``rest``, positions in ``sub``)
    and those it left unassigned that no available rep owns (an away rep's, unowned, cards to
    create) go to their best candidate with capacity (:func:`greedy`). The rounding sees only the
    reps the LP spread a group over; an away rep's account left there for want of room with them
    would move on the next plan, once its cards to create exist."""
    left = sorted({sub[j] for j in rest} | {g for g in sub if choice[g] < 0 and m.owner[g] < 0 and not m.held[g]})
    greedy(left, m, choice, m.loads_for(choice, skip=set(left)))
