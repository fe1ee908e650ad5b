"""The programme of a pair of reps for the polish (:mod:`.polish`), and its exact solutions.

Re-dividing the movable groups of reps ``a`` and ``b`` between them, every other load fixed and
the value band's mean at today's, is a small binary programme: one binary per group (1: to ``a``,
0: to ``b``); the objective is the fit value it brings (the net score with ``a`` minus with ``b``
per group to ``a``) less the model's penalties on the two reps' count and value band violations;
each rep's capacities (cards and pipeline) are hard, or today's load when it is above them.

Up to ``ENUM_MAX`` groups every one of the 2^k divisions is evaluated at once (numpy, a few
milliseconds at 16 groups, far below HiGHS's per-call cost on such a programme); the best one
wins, ties going to today's division and then to the lowest index (group j of ``sub`` to ``a``
is bit j of the index). Bigger pairs go to HiGHS at a node limit. Both solve the same programme;
the enumeration is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from tasksync.policies.optimal.model import Loads, Model
from tasksync.policies.optimal.native import quiet_solver

__all__ = ["ENUM_MAX", "PairProgramme", "Side", "by_enumeration", "by_highs", "pair_programme", "worth"]

ENUM_MAX = 14  # groups up to which a pair's divisions are enumerated (2^14 = 16,384 of them)
TIE = 1e-9  # relative: divisions whose worth is this close to the best tie


@dataclass(frozen=True)
class Side:
    """One rep of a pair: its loads without the pair's groups, its band limits and its hard caps."""

    n: float  # open cards
    v: float  # pipeline
    e: float  # expected value
    hi_e: float  # value band (±inf when the band is off)
    lo_e: float
    cap_n: float  # capacity in cards, or today's load when above it
    cap_v: float  # capacity in pipeline (with the rounding the model tolerates), or today's


@dataclass(frozen=True)
class PairProgramme:
    """The groups of a pair of reps and what each brings to either rep."""

    d: np.ndarray  # (k,) net score with a − with b
    cnt: np.ndarray  # (k,) cards
    val: np.ndarray  # (k,) pipeline
    ev_a: np.ndarray  # (k,) expected value with a
    ev_b: np.ndarray  # (k,) expected value with b
    a: Side
    b: Side
    lower: float  # the count band
    upper: float
    band_penalty: float
    value_penalty: float
    value_band: bool  # whether the value band is on
    today: np.ndarray  # (k,) today's division (True: with a)

    @property
    def k(self) -> int:
        return len(self.d)


def pair_programme(
    m: Model, choice: np.ndarray, sub: np.ndarray, a: int, b: int, now: Loads | None = None
) -> PairProgramme:
    """The programme dividing groups ``sub`` between reps ``a`` and ``b`` under ``choice`` (whose
    loads are ``now`` when given)."""
    n, v, e = m.loads_for(choice, skip=set(sub.tolist()))
    now_n, now_v, now_e = now if now is not None else m.loads_for(choice)
    mean = m.value_mean if m.value_mean is not None else float(now_e.mean())
    w, band = m.weights(), m.value_band

    def side(r: int) -> Side:
        hi, lo = ((1 + band) * w[r] * mean, (1 - band) * w[r] * mean) if band else (np.inf, -np.inf)
        cap_v = max(float(m.vcap[r]), float(now_v[r])) + 1e-6
        return Side(float(n[r]), float(v[r]), float(e[r]), hi, lo, max(float(m.cap[r]), float(now_n[r])), cap_v)

    return PairProgramme(
        d=m.net_d[sub, a] - m.net_d[sub, b],
        cnt=m.count[sub].astype(float),
        val=m.value_[sub].astype(float),
        ev_a=m.ev_d[sub, a],
        ev_b=m.ev_d[sub, b],
        a=side(a),
        b=side(b),
        lower=m.lower,
        upper=m.upper,
        band_penalty=m.band_penalty,
        value_penalty=m.value_penalty,
        value_band=bool(band),
        today=choice[sub] == a,
    )


def _subset_sums(w: np.ndarray) -> np.ndarray:
    """(2^k, cols): row i holds the column sums of the rows j of ``w`` (k, cols) whose bit j is
    set in i (doubling: each group adds a copy of the table shifted by its row)."""
    out = np.zeros((1 << len(w), w.shape[1]))
    for j, row in enumerate(w):
        np.add(out[: 1 << j], row, out=out[1 << j : 2 << j])
    return out


def _penalty(p: PairProgramme, s: Side, n: np.ndarray, e: np.ndarray) -> np.ndarray:
    over = np.maximum(n - p.upper, 0.0) + np.maximum(p.lower - n, 0.0)
    out: np.ndarray = p.band_penalty * over
    if p.value_band:
        out = out + p.value_penalty * (np.maximum(e - s.hi_e, 0.0) + np.maximum(s.lo_e - e, 0.0))
    return out


def _loads(p: PairProgramme, sums: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per division (rows of ``sums``: d, cnt, val, ev_a, ev_b to a): both reps' cards, pipeline
    and expected value."""
    tot_c, tot_v, tot_eb = float(p.cnt.sum()), float(p.val.sum()), float(p.ev_b.sum())
    n_a, v_a, e_a = p.a.n + sums[:, 1], p.a.v + sums[:, 2], p.a.e + sums[:, 3]
    n_b, v_b, e_b = p.b.n + (tot_c - sums[:, 1]), p.b.v + (tot_v - sums[:, 2]), p.b.e + (tot_eb - sums[:, 4])
    return n_a, v_a, e_a, n_b, v_b, e_b


def _worths(p: PairProgramme, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per division: its worth (fit value less band penalties) and whether both caps hold."""
    n_a, v_a, e_a, n_b, v_b, e_b = _loads(p, sums)
    worth = sums[:, 0] - _penalty(p, p.a, n_a, e_a) - _penalty(p, p.b, n_b, e_b)
    ok = (n_a <= p.a.cap_n + 1e-9) & (n_b <= p.b.cap_n + 1e-9) & (v_a <= p.a.cap_v) & (v_b <= p.b.cap_v)
    return worth, ok


def worth(p: PairProgramme, x: np.ndarray) -> tuple[float, bool]:
    """The programme's objective at division ``x`` (1: to a), and whether both caps hold there."""
    xs = np.asarray(x, dtype=float)
    sums = np.array([[xs @ p.d, xs @ p.cnt, xs @ p.val, xs @ p.ev_a, xs @ p.ev_b]])
    w, ok = _worths(p, sums)
    return float(w[0]), bool(ok[0])


def by_enumeration(p: PairProgramme) -> np.ndarray:
    """The best division (True: to a) among all 2^k; ties: today's, then the lowest index."""
    sums = _subset_sums(np.column_stack((p.d, p.cnt, p.val, p.ev_a, p.ev_b)))
    w, ok = _worths(p, sums)
    w = np.where(ok, w, -np.inf)  # today's division always holds: never all -inf
    best = float(w.max())
    near = w >= best - TIE * max(abs(best), 1.0)
    today = int(np.dot(p.today.astype(np.int64), 1 << np.arange(p.k, dtype=np.int64)))
    i = today if near[today] else int(np.argmax(near))
    out: np.ndarray = (i >> np.arange(p.k)) & 1 == 1
    return out


def by_highs(p: PairProgramme, nodes: int | None, gap: float = 1e-6) -> np.ndarray | None:
    """The programme by HiGHS (at most ``nodes`` branch-and-bound nodes; None: no limit); None
    when it finds no division."""
    k = p.k
    # Columns: x (k), then per rep (a, b): count over, count under, value over, value under.
    pen = [p.band_penalty, p.band_penalty, p.value_penalty, p.value_penalty]
    c = np.r_[-p.d, pen, pen]
    rows, lb, ub = [], [], []
    for j, (s, sign, ev) in enumerate(((p.a, 1.0, p.ev_a), (p.b, -1.0, p.ev_b))):
        # Rep a holds base + Σ amount·x, rep b base + Σ amount·(1 − x): sign·amount per x.
        n0 = s.n + (0.0 if sign > 0 else float(p.cnt.sum()))
        e0 = s.e + (0.0 if sign > 0 else float(ev.sum()))
        v0 = s.v + (0.0 if sign > 0 else float(p.val.sum()))
        slack = np.zeros((4, 8))
        slack[[0, 1, 2, 3], [4 * j, 4 * j + 1, 4 * j + 2, 4 * j + 3]] = [-1.0, 1.0, -1.0, 1.0]
        for amount, slack_row, lo, hi in (
            (p.cnt, slack[0], -np.inf, p.upper - n0),
            (p.cnt, slack[1], p.lower - n0, np.inf),
            (ev, slack[2], -np.inf, s.hi_e - e0),
            (ev, slack[3], s.lo_e - e0, np.inf),
            (p.cnt, np.zeros(8), -np.inf, s.cap_n - n0),
            (p.val, np.zeros(8), -np.inf, s.cap_v - v0),
        ):
            rows.append(np.r_[sign * amount, slack_row])
            lb.append(lo)
            ub.append(hi)
    opts: dict[str, float | bool | int] = {"presolve": False, "mip_rel_gap": gap}
    if nodes is not None:
        opts["node_limit"] = nodes
    with quiet_solver():
        res = milp(
            c,
            constraints=LinearConstraint(np.array(rows), np.array(lb), np.array(ub)),
            integrality=np.r_[np.ones(k), np.zeros(8)],
            bounds=Bounds(np.zeros(k + 8), np.r_[np.ones(k), np.full(8, np.inf)]),
            options=opts,
        )
    out: np.ndarray | None = None if res.x is None else res.x[:k] > 0.5
    return out
