"""Big books in blocks of reps: each block a small copy of the team, solved as one programme.

Reps are dealt round robin by capacity, so every block gets its share of room. Accounts go to
the block of their owner (or pinned owner); unowned work and the excess of overloaded blocks go
to the blocks with most room. Every order is stable, so the cut is deterministic.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from tasksync.policies.book import Book, WorkItem
from tasksync.policies.workload import capacity, group_key, movable, value_capacity
from tasksync.settings import PolicySettings

__all__ = ["split_blocks"]


@dataclass
class _Blocks:
    n: int
    block_of: dict[str, int]
    room: np.ndarray
    vroom: np.ndarray
    load: np.ndarray
    pipe: np.ndarray

    def add(self, b: int, cards: float, value: float, sign: float = 1.0) -> None:
        self.load[b] += sign * cards
        self.pipe[b] += sign * value


def _deal(book: Book, size: int) -> _Blocks:
    avail = sorted(book.available_reps, key=lambda r: (-min(capacity(r), 1e9), r.id))
    n_b = math.ceil(len(avail) / size)
    block_of = {r.id: k % n_b for k, r in enumerate(avail)}
    room, vroom = np.zeros(n_b), np.zeros(n_b)
    for r in avail:
        room[block_of[r.id]] += min(capacity(r), 1e9)
        vroom[block_of[r.id]] += value_capacity(r)
    return _Blocks(n_b, block_of, room, vroom, np.zeros(n_b), np.zeros(n_b))


def split_blocks(book: Book, p: PolicySettings, size: int) -> tuple[float, list[Book]]:
    """The team's mean open cards per available rep, and one sub-book per block of reps."""
    bl = _deal(book, size)
    groups: dict[str, list[WorkItem]] = defaultdict(list)
    fixed: list[WorkItem] = []
    pins: dict[str, str] = {}
    rep_load: Counter[str] = Counter()
    for i in book.items:
        if not movable(i, bl.block_of, p):
            fixed.append(i)
            if i.pinned and i.owner:
                pins.setdefault(group_key(i, p), i.owner)
            if i.owner in bl.block_of:
                bl.add(bl.block_of[i.owner], 1, i.value)
        else:
            groups[group_key(i, p)].append(i)
        if i.owner in bl.block_of:
            rep_load[i.owner] += 1
    g_value = {k: sum(i.value for i in its) for k, its in groups.items()}
    g_block: dict[str, int] = {}
    owner_of: dict[str, str] = {}
    free: list[str] = []
    for key in sorted(groups):
        owners = Counter(i.owner for i in groups[key] if i.owner in bl.block_of)
        pin = pins.get(key)
        o = pin if pin in bl.block_of else (min(owners, key=lambda r: (-owners[r], r)) if owners else None)
        if o is None:
            free.append(key)
            continue
        owner_of[key] = o
        g_block[key] = bl.block_of[o]
        bl.add(g_block[key], len(groups[key]), g_value[key])
    size_b = np.bincount(np.array(list(bl.block_of.values())), minlength=bl.n)
    team_mean = (bl.load.sum() + sum(len(groups[k]) for k in free)) / len(bl.block_of)
    target = team_mean * size_b
    short = bool((bl.load + sum(len(groups[k]) for k in free) < target * (1 - p.band)).any())
    for b in range(bl.n):
        goal = target[b] if short else target[b] * (1 + p.band / 2)
        limit = goal if short else target[b] * (1 + p.band)
        if bl.load[b] <= limit and bl.load[b] <= bl.room[b] and bl.pipe[b] <= bl.vroom[b]:
            continue
        mine = sorted(
            (k for k, v in g_block.items() if v == b and pins.get(k) not in bl.block_of),
            key=lambda k: (-rep_load[owner_of[k]], len(groups[k]), k),
        )
        for k in mine:
            if bl.load[b] <= goal and bl.load[b] <= bl.room[b] and bl.pipe[b] <= bl.vroom[b]:
                break
            del g_block[k]
            bl.add(b, len(groups[k]), g_value[k], -1.0)
            free.append(k)
    for key in sorted(free, key=lambda k: (-len(groups[k]), k)):
        n_k = len(groups[key])
        fits = (bl.load + n_k <= bl.room) & (bl.pipe + g_value[key] <= bl.vroom)
        spare = np.where(fits, target - bl.load, -np.inf)
        if np.isfinite(spare).any():
            b = int(np.argmax(spare))
        else:
            b = int(np.lexsort((-(bl.vroom - bl.pipe), -(bl.room - bl.load)))[0])
        g_block[key] = b
        bl.add(b, n_k, g_value[key])
    items: list[list[WorkItem]] = [[] for _ in range(bl.n)]
    for key in sorted(groups):
        items[g_block[key]].extend(groups[key])
    for i in fixed:
        items[bl.block_of.get(i.owner or "", g_block.get(group_key(i, p), 0))].append(i)
    away = [r for r in book.reps if not r.available]
    avail = sorted(book.available_reps, key=lambda r: r.id)
    books = []
    for b in range(bl.n):
        reps = [r for r in avail if bl.block_of[r.id] == b] + away
        books.append(
            Book(reps, {r.id: book.rep_member[r.id] for r in reps}, items[b], book.crm, [], book.today, book.policy)
        )
    return float(team_mean), books
