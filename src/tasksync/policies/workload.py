"""Workload, capacity and bands: one meaning shared by every policy.

* A rep's **workload** is their open cards (every card they own, locked, unmanaged or not); their
  **pipeline** is the deal value of those cards; their **expected value** is the sum over them of
  P(win with that rep) × value.
* **No capacity** (``Rep.capacity`` or ``Rep.capacity_value`` unset) means unlimited: ``math.inf``.
  A rep is within a capacity when the load is at most the capacity (value with a rounding tolerance).
* The **count band** is ``mean × (1 ± band)`` over available reps, rounded inwards to whole cards
  when a whole number fits; its mean (:func:`count_mean`) counts the open cards available reps
  hold and every card a policy may place (unowned ones and cards to create too), per available
  rep, so that ``plan``, ``report`` and ``reps`` show one band. The **value band** is
  ``target × (1 ± value_band)`` of expected value, where a rep's **value target** is the mean
  expected value of available reps (``value_target = "mean"``) or that mean × their **weight**,
  quota ÷ the mean quota of available reps (``value_target = "quota"``; a rep without a quota, or
  with 0, counts at the mean quota, so the weights average 1 and the targets sum to the team's
  expected value).
* Work moves in **groups**: all open managed cards of one account when ``keep_accounts_together``,
  else each card alone.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from tasksync.crm.records import Rep
from tasksync.policies.book import Book, WorkItem
from tasksync.policies.reasons import Band
from tasksync.settings import PolicySettings

__all__ = [
    "capacity",
    "count_band",
    "count_mean",
    "group_key",
    "group_order",
    "item_order",
    "movable",
    "value_band",
    "value_capacity",
    "value_targets",
    "value_weights",
    "within_value",
    "workload_stats",
]


def capacity(rep: Rep) -> float:
    """Open cards the rep may hold; ``inf`` when no capacity is set."""
    return float(rep.capacity) if rep.capacity is not None else math.inf


def value_capacity(rep: Rep) -> float:
    """Open pipeline value the rep may hold; ``inf`` when no value capacity is set."""
    return float(rep.capacity_value) if rep.capacity_value is not None else math.inf


def within_value(pipeline: float, cap: float) -> bool:
    """``pipeline`` within the value capacity ``cap`` (sums of money tolerate rounding)."""
    return pipeline <= cap + 1e-9 * (cap if math.isfinite(cap) else 0.0) + 1e-6


def count_band(mean: float, band: float) -> Band:
    """The open-card band: whole cards, rounded inwards when a whole number fits, else the two
    whole numbers either side of the mean (a mean of 3.4 at ±10%: 3–4 cards, not 3.06–3.74, which
    no rep can hold)."""
    lo, hi = mean * (1 - band), mean * (1 + band)
    if math.ceil(lo - 1e-9) <= math.floor(hi + 1e-9):
        return Band(mean, float(math.ceil(lo - 1e-9)), float(math.floor(hi + 1e-9)))
    return Band(mean, float(math.floor(mean)), float(math.ceil(mean)))


def count_mean(book: Book, policy: PolicySettings) -> float:
    """Open cards per available rep, the count band's centre: the cards available reps hold that
    no policy may move, plus every card a policy may place (:func:`movable`: unowned cards, cards
    to create, and those of away reps with ``move_from_unavailable``), over the available reps;
    0 without any. The policies count the same from their loads and groups; ``report`` and
    ``reps`` (no policy ran) count it here, so that they show the band a plan holds."""
    avail = {r.id for r in book.available_reps}
    if not avail:
        return 0.0
    return sum(1 for i in book.items if i.owner in avail or movable(i, avail, policy)) / len(avail)


def value_band(mean: float, band: float) -> Band:
    return Band(mean, mean * (1 - band), mean * (1 + band))


def value_weights(reps: Iterable[Rep], policy: PolicySettings) -> dict[str, float]:
    """Per rep (pass the available ones): their value target as a multiple of the mean expected
    value. 1 for everyone with ``value_target = "mean"`` or when no rep has a quota."""
    reps = list(reps)
    quotas = [r.quota for r in reps if r.quota is not None and r.quota > 0]
    if policy.value_target != "quota" or not quotas:
        return {r.id: 1.0 for r in reps}
    mean_quota = sum(quotas) / len(quotas)
    return {r.id: (r.quota / mean_quota if r.quota is not None and r.quota > 0 else 1.0) for r in reps}


def value_targets(weights: Mapping[str, float], mean: float, band: float) -> dict[str, Band]:
    """Per rep, the value band around their target ``mean × weight`` (``mean``: the mean expected
    value of available reps; ``weights`` from :func:`value_weights`)."""
    return {r: value_band(mean * w, band) for r, w in weights.items()}


def group_key(item: WorkItem, policy: PolicySettings) -> str:
    """The group ``item`` moves with: its account (``keep_accounts_together``), else itself."""
    return item.group if policy.keep_accounts_together else f"item:{item.key}"


def group_order(item: WorkItem, policy: PolicySettings) -> str:
    """Where the group ``item`` moves with comes in a policy's order: its account, else the CRM deal
    the card stands for. Unlike the card's id this is the same before and after tasksync creates the
    card for a deal, so the run after an apply meets the groups in the order the planning run did
    (solvers and repairs that meet equal choices in another order may settle on another one)."""
    if policy.keep_accounts_together and item.account is not None:
        return f"account:{item.account.id}"
    return f"item:{item.deal.id}" if item.deal is not None else f"item:{item.key}"


def item_order(item: WorkItem) -> tuple[str, str]:
    """An item's place inside its group, by the same rule as :func:`group_order`."""
    return (item.deal.id if item.deal is not None else "", item.key)


def movable(item: WorkItem, available: Collection[str], policy: PolicySettings) -> bool:
    """Whether a policy may choose ``item``'s owner: managed, not locked, and not held by an away
    rep when ``move_from_unavailable`` is off."""
    if not item.managed or item.locked:
        return False
    return not (item.owner is not None and item.owner not in available and not policy.move_from_unavailable)


def workload_stats(loads: Sequence[float]) -> tuple[float, float]:
    """(max/mean, coefficient of variation) of rep workloads; (0, 0) for no load."""
    if not loads:
        return 0.0, 0.0
    arr = np.asarray(loads, dtype=float)
    mean = float(arr.mean())
    if mean <= 0:
        return 0.0, 0.0
    return float(arr.max() / mean), float(arr.std() / mean)
