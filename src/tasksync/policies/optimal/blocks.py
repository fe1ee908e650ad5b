"""Big books in blocks of reps: each block a small copy of the team, solved as one programme
against the whole team's centres.

Reps are dealt to blocks in a snake order by strength (win-rate lift over the book's sectors), so
that every block gets its share of skill. Groups (accounts) go to the block of their pinned or
majority owner; unowned groups go where they even the blocks best. The blocks are then evened on
both measures, open cards and rep-independent expected value, against their shares of the team's,
by moving whole groups out of blocks outside a tolerance, one move at a time, the move that most
evens the blocks first; groups of a block within tolerance never move.

Every block holds its reps' bands around the **team's** means (:class:`~.model.Team`): the count
band around the team's open cards per rep, the value band around the team's expected value per rep
× the rep's weight. The team's mean expected value counts each card with the rep it is with (a
guess for cards nobody available owns, which :meth:`Split.calibrated` corrects by the divisions of
the first blocks), rounded to a grid of 0.4% to 1% steps so that the small changes between runs do
not move every block's centre. A block keeps today's division when every
rep is within the value band narrowed by half a step (then within the team's), and divides within
a band narrowed by one and a half steps, so that its division still holds the wider band when the
centre moves by a step on the book as it leaves it.

A fixed point: on the book as a division of these blocks leaves it, every group is owned within
the block it was divided in and the blocks' open cards and rep-independent expected value (what
evening measures) are unchanged, so the split is the same. Every order is stable.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from tasksync.crm.records import CrmData
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.optimal.model import Team
from tasksync.policies.scoring import WinModel
from tasksync.policies.workload import (
    capacity,
    count_band,
    group_key,
    group_order,
    item_order,
    movable,
    value_capacity,
    value_weights,
)
from tasksync.settings import PolicySettings

__all__ = ["Split", "afresh", "rep_independent", "replace_owners", "slim", "split_blocks"]

EVEN = 0.25  # blocks are even when within this share of the bands (band, value_band) of their targets


@dataclass
class Split:
    """The team's centres, the value band each block holds (narrowed by the grid), and one
    sub-book per block of reps."""

    team: Team
    value_band: float
    books: list[Book]
    cards: np.ndarray  # per block: the open cards its reps will hold
    base: np.ndarray  # per block: the rep-independent expected value of those cards
    team_base: float  # the same per available rep over the team
    stay_band: float = 0.0  # the value band within which a block keeps today's division
    # Per block: the expected value its reps will hold as the centre guesses it (each card with its
    # available owner, the cards nobody available owns at the owned cards' lift); and whether any
    # card was guessed so (the centre is then an estimate, see :meth:`calibrated`).
    guess: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loose: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per block: the loose cards' rep-independent EV
    reps: int = 0  # available reps in the team
    raw: float = 0.0  # the team's mean expected value before rounding to the grid

    @property
    def guessed(self) -> bool:
        """Whether the centre is a guess: some cards are held by nobody available."""
        return bool(self.loose.sum() > 0)

    def centred(self, ev_mean: float, band: float) -> Split:
        """The same blocks around the team's mean expected value ``ev_mean`` (rounded to the
        grid; ``band``: the policy's value band). The rounded centre is off by half a step at
        most, so a rep within the band narrowed by that half step (``stay_band``) is within the
        team's band: a block keeps today's division when it holds that band. A block divides
        within a band narrowed by one step more (``value_band``), so that its division still holds
        the wider band when the centre moves by a step on the book as it leaves it (the expected
        value a division gains moves the centre): without that margin, rounds could move the
        same cards back and forth as the centre went up and down a step."""
        q, step = _on_grid(ev_mean)
        divide, stay = (max(band - 1.5 * step, band / 2), max(band - step / 2, band / 2)) if band else (0.0, 0.0)
        return replace(self, team=replace(self.team, ev_mean=q), value_band=divide, stay_band=stay, raw=ev_mean)

    def calibrated(self, blocks: list[int], held: float, band: float) -> Split:
        """The same blocks around the centre the divisions of ``blocks`` show the team will reach:
        they left their reps ``held`` expected value, above the split's guess by a share of their
        loose cards' rep-independent expected value that the team's loose cards are taken to
        bring alike (what a division gains is mostly where it places the cards nobody held). A
        guessed centre counts owned cards with today's owner and the others at the owned cards'
        lift: 7% below what the division reached on the real-shaped 100k book, 3% on the
        synthetic one, and every block then moved again in the next round."""
        loose = float(self.loose[blocks].sum())
        if loose <= 0 or held <= 0 or not self.reps:
            return self
        gain = (held - float(self.guess[blocks].sum())) / loose
        return self.centred((float(self.guess.sum()) + gain * float(self.loose.sum())) / self.reps, band)


@dataclass
class _Blocks:
    """Blocks of reps and their totals: open cards, pipeline and rep-independent expected value."""

    n: int
    block_of: dict[str, int]
    room: np.ndarray
    vroom: np.ndarray
    load: np.ndarray
    pipe: np.ndarray
    ev: np.ndarray

    def add(self, b: int, cards: float, value: float, ev: float, sign: float = 1.0) -> None:
        self.load[b] += sign * cards
        self.pipe[b] += sign * value
        self.ev[b] += sign * ev


def _deal(book: Book, wm: WinModel, size: int, base: Mapping[str, float]) -> _Blocks:
    """Available reps dealt to ``ceil(reps / size)`` blocks in order of strength (their win-rate
    lift over the book's sectors, weighted by each sector's expected value; then id), dealt 0, 1,
    …, n-1, n-1, …, 0, 0, 1, … so that each block gets its share of skill (what a block can reach
    in expected value) and, on average, of room. Depends on the reps and the cards, never on who
    owns what."""
    share: dict[str | None, float] = defaultdict(float)
    for i in book.items:
        share[i.sector] += base[i.key]
    total = sum(share.values()) or 1.0

    def strength(rep_id: str) -> float:
        lift = wm.rep.get(rep_id, 1.0)
        return sum(v / total * lift * (wm.rep_sector.get((rep_id, s), 1.0) if s else 1.0) for s, v in share.items())

    avail = sorted(book.available_reps, key=lambda r: (-strength(r.id), r.id))
    n_b = max(1, math.ceil(len(avail) / size))
    block_of = {}
    for k, r in enumerate(avail):
        lap, pos = divmod(k, n_b)
        block_of[r.id] = pos if lap % 2 == 0 else n_b - 1 - pos
    room, vroom = np.zeros(n_b), np.zeros(n_b)
    for r in avail:
        room[block_of[r.id]] += min(capacity(r), 1e9)
        vroom[block_of[r.id]] += min(value_capacity(r), 1e18)
    return _Blocks(n_b, block_of, room, vroom, np.zeros(n_b), np.zeros(n_b), np.zeros(n_b))


@dataclass
class _Groups:
    """The movable groups of the book (sorted keys) and what each weighs."""

    keys: list[str]
    items: dict[str, list[WorkItem]]
    count: np.ndarray
    value: np.ndarray
    base: np.ndarray  # rep-independent expected value (what evening measures)
    home: list[int]  # block of the pinned or majority available owner; -1: none
    pinned: np.ndarray  # held in its block by a pin


def _guesses(
    book: Book, wm: WinModel, bl: _Blocks, fixed: list[WorkItem], gr: _Groups, items_base: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """The expected value each card will bring as the division leaves it (by card key; cards of
    away reps that cannot move bring none): with its available owner; a card nobody available owns
    at the rep-independent value × the lift the owned cards show over theirs (the division places
    them with reps who fit). Also the rep-independent expected value of those loose cards, by key
    (none: the guess is today's expected value)."""
    out: dict[str, float] = {}
    owned, owned_base = 0.0, 0.0
    loose: list[str] = []
    for i in fixed:
        if i.owner in bl.block_of:
            out[i.key] = wm.expected_value(i, i.owner)
            owned, owned_base = owned + out[i.key], owned_base + items_base[i.key]
    for key in gr.keys:
        for i in gr.items[key]:
            if i.owner in bl.block_of:
                out[i.key] = wm.expected_value(i, i.owner)
                owned, owned_base = owned + out[i.key], owned_base + items_base[i.key]
            else:
                loose.append(i.key)
    lift = owned / owned_base if owned_base > 0 else 1.0
    for key in loose:
        out[key] = items_base[key] * lift
    return out, {key: items_base[key] for key in loose}


def rep_independent(book: Book, wm: WinModel) -> dict[str, float]:
    """Each card's expected value with no rep's lift, by key."""
    return {i.key: wm.expected_value(i, None) for i in book.items}


def _on_grid(x: float) -> tuple[float, float]:
    """``x`` rounded to a grid of 1, 2 and 5 × a power of ten (a step of 0.4% to 1% of ``x``),
    and the step as a share of the rounded value. Exact decimal steps: the same on any machine."""
    if x <= 0 or not math.isfinite(x):
        return x, 0.0
    unit = 10.0 ** (math.floor(math.log10(x)) - 2)
    lead = x / unit  # 100 ≤ lead < 1000
    step = unit * (1.0 if lead < 200 else 2.0 if lead < 500 else 5.0)
    q = round(x / step) * step
    return q, step / q


def _groups(book: Book, p: PolicySettings, bl: _Blocks, base: Mapping[str, float]) -> tuple[_Groups, list[WorkItem]]:
    by_key: dict[str, list[WorkItem]] = defaultdict(list)
    fixed: list[WorkItem] = []
    pins: dict[str, str] = {}
    for i in book.items:
        if not movable(i, bl.block_of, p):
            fixed.append(i)
            if i.pinned and i.owner and i.managed:
                pins.setdefault(group_key(i, p), i.owner)
            if i.owner in bl.block_of:
                bl.add(bl.block_of[i.owner], 1, i.value, base[i.key])
        else:
            by_key[group_key(i, p)].append(i)
    for its in by_key.values():
        its.sort(key=item_order)
    keys = sorted(by_key, key=lambda k: (group_order(by_key[k][0], p), k))
    home, pinned = [], []
    for key in keys:
        pin = pins.get(key)
        if pin in bl.block_of:
            home.append(bl.block_of[pin])
            pinned.append(True)
            continue
        owners = Counter(i.owner for i in by_key[key] if i.owner in bl.block_of)
        o = min(owners, key=lambda r: (-owners[r], r)) if owners else None
        home.append(bl.block_of[o] if o is not None else -1)
        pinned.append(False)
    gr = _Groups(
        keys,
        by_key,
        np.array([float(len(by_key[k])) for k in keys]),
        np.array([sum(i.value for i in by_key[k]) for k in keys]),
        np.array([sum(base[i.key] for i in by_key[k]) for k in keys]),
        home,
        np.array(pinned, dtype=bool),
    )
    return gr, fixed


def _place(bl: _Blocks, gr: _Groups, where: np.ndarray, target: np.ndarray, target_ev: np.ndarray, vb: bool) -> None:
    """Place the groups without a home (``where`` -1), biggest first, in the block furthest below
    its targets (each measure as a share of the block's target) among those with room."""
    n_scale, e_scale = np.maximum(target, 1.0), np.maximum(target_ev, 1e-9)
    free = np.flatnonzero(where < 0).tolist()
    for g in sorted(free, key=lambda g: (-gr.count[g], -gr.base[g], gr.keys[g])):
        fits = (bl.load + gr.count[g] <= bl.room) & (bl.pipe + gr.value[g] <= bl.vroom)
        spare = (target - bl.load) / n_scale + ((target_ev - bl.ev) / e_scale if vb else 0.0)
        if fits.any():
            b = int(np.argmax(np.where(fits, spare, -np.inf)))
        else:
            b = int(np.lexsort((-(bl.vroom - bl.pipe), -(bl.room - bl.load)))[0])
        where[g] = b
        bl.add(b, gr.count[g], gr.value[g], gr.base[g])


def _even(
    bl: _Blocks,
    gr: _Groups,
    where: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
    tol: tuple[float, float],
) -> None:
    """Move groups out of blocks that are uneven (open cards or expected value outside ``tol``,
    a share of the block's target, or over the block's capacity), each time the one move that most
    lowers the blocks' unevenness (sum of squared relative gaps to the targets, capacity excess far
    above), until every block is even or no move lowers it. A function of the blocks' contents
    only: a split that stopped here stops here again."""
    target, target_ev = targets
    n_scale, e_scale = np.maximum(target, 1.0), np.maximum(target_ev, 1e-9)
    v_scale = np.maximum(np.where(np.isfinite(bl.vroom), bl.vroom, 1.0), 1.0)
    use_e = 1.0 if tol[1] > 0 else 0.0
    mobile = ~gr.pinned
    dsts = np.arange(bl.n)
    for _ in range(4 * len(gr.keys) + 10):
        dn = (bl.load - target) / n_scale
        de = use_e * (bl.ev - target_ev) / e_scale
        over = _over(bl.load - bl.room, n_scale) + _over(bl.pipe - bl.vroom, v_scale)
        uneven = (np.abs(dn) > tol[0] + 1e-12) | (np.abs(de) > tol[1] + 1e-12) | (over > 0)
        if not uneven.any():
            return
        now = dn**2 + de**2 + 1e6 * over
        best: tuple[float, int, int] | None = None  # (lower unevenness, group, to)
        for src in np.flatnonzero(uneven).tolist():
            cand = np.flatnonzero((where == src) & mobile)
            if not len(cand):
                continue
            n_g, v_g, e_g = gr.count[cand, None], gr.value[cand, None], gr.base[cand, None]
            # (groups, blocks): the source's and each destination's unevenness after the move.
            src_after = (
                (dn[src] - n_g / n_scale[src]) ** 2
                + (de[src] - use_e * e_g / e_scale[src]) ** 2
                + 1e6
                * (
                    _over(bl.load[src] - n_g - bl.room[src], n_scale[src])
                    + _over(bl.pipe[src] - v_g - bl.vroom[src], v_scale[src])
                )
            )
            dst_after = (
                (dn[None, :] + n_g / n_scale[None, :]) ** 2
                + (de[None, :] + use_e * e_g / e_scale[None, :]) ** 2
                + 1e6 * (_over(bl.load + n_g - bl.room, n_scale) + _over(bl.pipe + v_g - bl.vroom, v_scale))
            )
            gain = now[src] + now[None, :] - src_after - dst_after
            fits = (bl.load[None, :] + n_g <= bl.room[None, :]) & (bl.pipe[None, :] + v_g <= bl.vroom[None, :])
            gain = np.where(fits & (dsts[None, :] != src), gain, -np.inf)
            k = int(np.argmax(gain))  # first of the best: the lowest key, then the lowest block
            g, dst = divmod(k, bl.n)
            if gain[g, dst] > 1e-12 and (best is None or gain[g, dst] > best[0] + 1e-15):
                best = (float(gain[g, dst]), int(cand[g]), dst)
        if best is None:
            return
        _, g, dst = best
        bl.add(int(where[g]), gr.count[g], gr.value[g], gr.base[g], -1.0)
        bl.add(dst, gr.count[g], gr.value[g], gr.base[g])
        where[g] = dst


def _over(excess: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
    """Squared capacity excess as a share of ``scale`` (0 within capacity)."""
    out: np.ndarray = (np.maximum(excess, 0.0) / scale) ** 2
    return out


def split_blocks(
    book: Book, p: PolicySettings, wm: WinModel, size: int, base: Mapping[str, float] | None = None
) -> Split:
    """The team's centres and one sub-book per block of about ``size`` available reps. ``base``:
    each card's rep-independent expected value by key, when known (it does not depend on owners:
    the rounds of a division pass it on)."""
    if base is None:
        base = rep_independent(book, wm)
    bl = _deal(book, wm, size, base)
    gr, fixed = _groups(book, p, bl, base)
    where = np.array(gr.home, dtype=np.int64)
    for g in np.flatnonzero(where >= 0).tolist():
        bl.add(int(where[g]), gr.count[g], gr.value[g], gr.base[g])
    n_avail = len(bl.block_of)
    size_b = np.bincount(np.array(list(bl.block_of.values()), dtype=np.int64), minlength=bl.n).astype(float)
    weights = value_weights(book.available_reps, p)
    w_b = np.zeros(bl.n)
    for r, b in bl.block_of.items():
        w_b[b] += weights[r]
    team_n = (float(bl.load.sum()) + float(gr.count[where < 0].sum())) / n_avail
    team_base = (float(bl.ev.sum()) + float(gr.base[where < 0].sum())) / n_avail
    targets = (team_n * size_b, team_base * w_b)
    _place(bl, gr, where, *targets, bool(p.value_band))
    _even(bl, gr, where, targets, (p.band * EVEN, p.value_band * EVEN))
    items: list[list[WorkItem]] = [[] for _ in range(bl.n)]
    for g, key in enumerate(gr.keys):
        items[int(where[g])].extend(gr.items[key])
    block_of_group = {key: int(where[g]) for g, key in enumerate(gr.keys)}
    for i in fixed:
        items[bl.block_of.get(i.owner or "", block_of_group.get(group_key(i, p), 0))].append(i)
    away = [r for r in book.reps if not r.available]
    avail = sorted(book.available_reps, key=lambda r: r.id)
    books = []
    for b in range(bl.n):
        reps = [r for r in avail if bl.block_of[r.id] == b] + away
        books.append(
            Book(reps, {r.id: book.rep_member[r.id] for r in reps}, items[b], book.crm, [], book.today, book.policy)
        )
    guess, loose = _guesses(book, wm, bl, fixed, gr, base)
    per_block = np.array([sum(guess.get(i.key, 0.0) for i in sub.items) for sub in books])
    loose_b = np.array([sum(loose.get(i.key, 0.0) for i in sub.items) for sub in books])
    split = Split(Team(team_n, 0.0, weights), 0.0, books, bl.load.copy(), bl.ev.copy(), team_base)
    split = replace(split, guess=per_block, loose=loose_b, reps=n_avail)
    return split.centred(sum(guess.values()) / max(n_avail, 1), p.value_band)


def slim(sub: Book) -> Book:
    """A block's sub-book for a worker: of the CRM data only the reps (the notes name them)."""
    return replace(sub, crm=CrmData(reps=sub.crm.reps))


def afresh(sub: Book, team: Team, p: PolicySettings) -> bool:
    """Whether a block of a big book is divided afresh, every group free: when most of its
    available reps hold open cards outside the team's count band today (a book with much unowned
    work, or a team that changed). Holding the owned groups that nothing asks to move would leave
    those reps outside the band. A block near the bands (a settle round, the book as a plan left
    it) holds them, so that a re-run stays cheap and keeps what it may keep."""
    band = count_band(team.count_mean, p.band)
    held = Counter(i.owner for i in sub.items if i.owner is not None)
    reps = sub.available_reps
    outside = sum(1 for r in reps if not band.lower <= held[r.id] <= band.upper)
    return 2 * outside > len(reps)


def replace_owners(book: Book, owners: Mapping[str, str]) -> Book:
    """The book as a plan giving ``owners`` would leave it."""
    items = [i.with_owner(owners[i.key]) if i.key in owners else i for i in book.items]
    return Book(book.reps, book.rep_member, items, book.crm, list(book.notes), book.today, book.policy)
