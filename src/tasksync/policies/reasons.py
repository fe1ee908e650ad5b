"""Why a card goes where it goes, as data: a kind and the numbers it cites; the words are rendered.

A policy builds each :class:`Reason` from its final division (the counts and expected values the
plan's tables show after the plan), so every number a reader sees in a reason can be checked
against those tables. :func:`Reason.text` is the only place that turns a reason into English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Band", "Reason", "ReasonKind", "change_reason", "weight_text"]


class ReasonKind(StrEnum):
    """What made a policy decide as it did. The value is the label shown and filtered on."""

    KEPT = "kept"  # stays with its owner
    PINNED = "pinned owner"  # with the owner of the account's pinned card
    UNOWNED = "unowned"
    OWNER_LEFT = "owner left the board"  # assigned only to people no longer on the board
    REP_AWAY = "rep away"
    OVER_CAPACITY = "over capacity"
    OVER_VALUE_CAPACITY = "over value capacity"
    ABOVE_BAND = "above the band"
    BELOW_BAND = "below the band"
    ABOVE_VALUE_BAND = "above the value band"
    BELOW_VALUE_BAND = "below the value band"
    ACCOUNT_TOGETHER = "account kept together"
    BETTER_FIT = "better fit"
    REBALANCING = "rebalancing"
    SHARE_FULL = "block full"  # a big book's block of reps had to give work away
    ROUND_ROBIN = "round robin"
    PRIORITY = "priority by expected value"
    STAGE = "CRM stage"
    NEW_CARD = "new card"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Band:
    """A band as the policy used it: the mean of available reps and the bounds it allows."""

    mean: float
    lower: float
    upper: float

    def text(self, money: bool = False) -> str:
        fmt = _money if money else _count
        return f"{fmt(self.lower)}–{fmt(self.upper)}"


def _count(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def _money(x: float) -> str:
    return f"{x:,.0f}"


def weight_text(x: float) -> str:
    """A value target's weight: ``2×``, ``0.75×``."""
    return f"{x:.2f}".rstrip("0").rstrip(".") + "×"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: ``kind``, the reps concerned by name, and the figures cited.

    ``frm`` is the rep the card leaves (or the rep the reason is about), ``to`` the rep it goes
    to. ``figures`` holds named numbers, all computed from the final division, e.g. ``before``
    and ``after`` (the rep's open cards), ``lower``/``upper`` (the band), ``ev_before``,
    ``ev_after``, ``ev_lower``, ``ev_upper`` (expected value per rep and its band), ``capacity``,
    ``win_rate`` and ``expected_value`` (of this card with ``to``), ``room`` (open cards ``to``
    may still take within the band), ``gain``, ``days`` (age of a stale deal), ``score`` and, with
    ``value_target = "quota"``, ``target`` (the rep's value target as a multiple of the team's
    mean: their quota ÷ the team's mean quota).
    ``fit`` names the fit terms that favour ``to`` (sector, region, role, account owner);
    ``adjustment`` a priority adjustment ("due soon", "stale").
    """

    kind: ReasonKind
    frm: str | None = None
    to: str | None = None
    figures: tuple[tuple[str, float], ...] = ()
    fit: tuple[str, ...] = ()
    adjustment: str | None = None
    then: Reason | None = field(default=None, compare=True)  # a second step ("unowned; then to X")

    def get(self, name: str, default: float = 0.0) -> float:
        return next((v for k, v in self.figures if k == name), default)

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.figures)

    def as_dict(self) -> dict[str, object]:
        """The reason as JSON-able data (for plans and reports)."""
        return {
            "kind": self.kind.value,
            "from": self.frm,
            "to": self.to,
            "figures": dict(self.figures),
            "fit": list(self.fit),
            "adjustment": self.adjustment,
        }

    def text(self) -> str:
        """The reason in words, rendered from the kind and figures only."""
        return _render(self)


def _why_bits(r: Reason) -> list[str]:
    """Why the card goes to ``r.to``: fit, win rate, expected value and room, as cited."""
    bits = list(r.fit)
    if r.has("win_rate"):
        bits.append(f"win rate {r.get('win_rate'):.0%}")
    if r.has("expected_value"):
        bits.append(f"expected value {_money(r.get('expected_value'))}")
    if r.has("room"):  # after the plan, this card counted: 0 reads as "no room" on the card given
        room = r.get("room")
        bits.append(
            f"room for {_count(room)} more in the band after the plan" if room else "at the band's top after the plan"
        )
    return bits


def _to_part(r: Reason) -> str:
    if r.to is None:
        return ""
    bits = _why_bits(r)
    return f"to {r.to}" + (f" ({', '.join(bits)})" if bits else "")


def _band_part(r: Reason, value: bool) -> str:
    if value:
        target = f", target: {weight_text(r.get('target'))} team mean quota" if r.has("target") else ""
        return (
            f"{_money(r.get('ev_before'))} expected value, band {_money(r.get('ev_lower'))}–{_money(r.get('ev_upper'))}"
            + target
        )
    return f"{_count(r.get('before'))} open cards, band {_count(r.get('lower'))}–{_count(r.get('upper'))}"


def _where(r: Reason, value: bool, side: str) -> str:
    """``above the band`` (``below``, ``the value band``), or, for a rep within it before the plan
    (the figures cited) whom the plan's other moves would have taken out of it, what would have been."""
    before = r.get("ev_before" if value else "before")
    if side == "above":
        out = before > r.get("ev_upper" if value else "upper")
    else:
        out = before < r.get("ev_lower" if value else "lower")
    band = f"{side} the {'value ' if value else ''}band"
    return band if out else f"would go {band} with the plan's other moves"


def _render(r: Reason) -> str:
    k = r.kind
    to = _to_part(r)
    tail = f"; {to}" if to else ""
    if k is ReasonKind.KEPT:
        return f"kept with {r.to}"
    if k is ReasonKind.PINNED:
        return f"kept with the account's pinned owner {r.to}"
    if k is ReasonKind.UNOWNED:
        return f"unowned{tail}"
    if k is ReasonKind.OWNER_LEFT:
        return f"its owner left the board{tail}"
    if k is ReasonKind.REP_AWAY:
        return f"{r.frm} is away{tail}"
    if k is ReasonKind.OVER_CAPACITY:
        held = f"{_count(r.get('before'))} tasks > {_count(r.get('capacity'))}"
        return f"{r.frm} over capacity (their accounts hold {held}){tail}"
    if k is ReasonKind.OVER_VALUE_CAPACITY:
        held = f"{_money(r.get('pipeline'))} open pipeline > {_money(r.get('capacity_value'))}"
        return f"{r.frm} over value capacity (their accounts hold {held}){tail}"
    if k in (ReasonKind.ABOVE_BAND, ReasonKind.ABOVE_VALUE_BAND):
        value = k is ReasonKind.ABOVE_VALUE_BAND
        after = _money(r.get("ev_after")) if value else _count(r.get("after"))
        band = _where(r, value, "above")
        return f"{r.frm} {band} ({_band_part(r, value)}; {after} after){tail}"
    if k in (ReasonKind.BELOW_BAND, ReasonKind.BELOW_VALUE_BAND):
        value = k is ReasonKind.BELOW_VALUE_BAND
        after = _money(r.get("ev_after")) if value else _count(r.get("after"))
        held = _band_part(r, value).replace("open cards", "open cards held")
        bits = _why_bits(r)
        why = f" ({', '.join(bits)})" if bits else ""
        band = _where(r, value, "below")
        return f"{r.to} {band} ({held}; {after} after); from {r.frm}{why}"
    if k is ReasonKind.ACCOUNT_TOGETHER:
        return f"joins the account's other cards with {r.to}"
    if k is ReasonKind.BETTER_FIT:
        bits = _why_bits(r)
        if r.has("gain"):
            bits.append(f"{_money(r.get('gain'))} more fit-weighted expected value")
        return f"better fit with {r.to}" + (f" ({', '.join(bits)})" if bits else "")
    if k is ReasonKind.REBALANCING:
        bits = _why_bits(r)
        why = f" ({', '.join(bits)})" if bits else ""
        return f"rebalancing: {r.frm} to {r.to} makes room within the bands{why}"
    if k is ReasonKind.SHARE_FULL:
        return f"{r.frm}'s share of the team is full{tail}"
    if k is ReasonKind.ROUND_ROBIN:
        return "round robin" + (f" to {r.to}" if r.to else "")
    if k is ReasonKind.PRIORITY:
        adj = f"; {r.adjustment}" if r.adjustment else ""
        return f"expected value {_money(r.get('score'))}{adj}"
    return r.adjustment or k.value


def change_reason(reason: Reason | None) -> tuple[str, str]:
    """(text, kind) for a plan's change: what the engine records on a :class:`tasksync.model.Change`."""
    if reason is None:
        return "", ""
    return reason.text(), reason.kind.value
