"""The book: the board's tasks joined with their CRM records and the reps who can own them.

Linking happens once, here, so every policy sees the same facts: which rep owns each task now,
which account and deal it belongs to, what it is worth, and which owners are locked (pinned
cards, or owners a person changed since tasksync last wrote them).
"""

from __future__ import annotations

import gc
import operator
import re
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date
from urllib.parse import parse_qsl, urlsplit

from tasksync.crm.records import Account, ClosedDeal, CrmData, Deal, Rep
from tasksync.crm.values import account_key, loose_name_key, normalise_name
from tasksync.model import Member, Snapshot, Task
from tasksync.settings import PolicySettings, Settings

__all__ = ["Book", "WorkItem", "build_book", "frozen_heap", "match_reps", "segment_of"]


def size_band_of(employees: int | None, bands: Mapping[str, float]) -> str | None:
    """The largest size band whose lower bound ``employees`` reaches."""
    if employees is None:
        return None
    best: str | None = None
    for name, low in sorted(bands.items(), key=lambda kv: kv[1]):
        if employees >= low:
            best = name
    return best


def segment_of(
    sector: str | None, region: str | None, employees: int | None, value: float, policy: PolicySettings
) -> str:
    """The first configured segment (``[[policy.segments]]``) whose conditions all hold, else the
    sector: customers segmented by sector, size, region and potential value."""
    band = size_band_of(employees, policy.size_bands)
    for rule in policy.segments:
        if rule.sectors and (sector or "").casefold() not in {s.casefold() for s in rule.sectors}:
            continue
        if rule.regions and (region or "").casefold() not in {r.casefold() for r in rule.regions}:
            continue
        if rule.size_bands and (band or "") not in rule.size_bands:
            continue
        if rule.min_value is not None and value < rule.min_value:
            continue
        if rule.max_value is not None and value > rule.max_value:
            continue
        return rule.name
    return sector or "(none)"


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One unit of work to divide: an existing task, or a CRM deal that will get a card.

    ``key`` is the task id for existing tasks and ``new:<deal id>`` for cards to create.
    """

    key: str
    title: str
    task_id: str | None
    stage: str  # board stage (list/section) name
    deal: Deal | None
    account: Account | None
    owner: str | None  # current owner (rep id), None when unowned or owned by a non-rep
    locked: bool = False  # owner must not change (pinned, or a person's edit is respected)
    # Pinned by label: the whole account stays with this owner. A card a person moved by hand is
    # locked but does not pull the rest of its account along.
    pinned: bool = False
    managed: bool = True  # False: counted in workloads but never moved or re-prioritised
    owner_left: bool = False  # assigned only to people no longer on the board (no owner today)
    priority: str | None = None  # current priority
    due: date | None = None
    created: date | None = None
    segment: str = "(none)"  # configured segment, else the sector

    @property
    def value(self) -> float:
        return self.deal.value if self.deal else 0.0

    @property
    def group(self) -> str:
        """Tasks of one account stay with one rep."""
        if self.account is not None:
            return f"account:{self.account.id}"
        return f"item:{self.key}"

    @property
    def sector(self) -> str | None:
        return self.account.sector if self.account else None

    @property
    def region(self) -> str | None:
        return self.account.region if self.account else None

    @property
    def existing_customer(self) -> bool:
        return bool(self.account and self.account.customer)

    def with_owner(self, owner: str | None) -> WorkItem:
        """This card with ``owner`` (``dataclasses.replace(self, owner=owner)`` at half its cost:
        a settle check copies most of a book's cards)."""
        values = list(_ITEM_FIELDS(self))
        values[_OWNER_AT] = owner
        return WorkItem(*values)


# Every field of a WorkItem in order (:meth:`WorkItem.with_owner`), and where ``owner`` sits.
_ITEM_FIELDS = operator.attrgetter(*(f.name for f in fields(WorkItem)))
_OWNER_AT = [f.name for f in fields(WorkItem)].index("owner")


@dataclass
class Book:
    """Everything a policy needs, joined."""

    reps: list[Rep]  # reps matched to a board member (the only ones who can own tasks)
    rep_member: dict[str, str]  # rep id -> member id
    items: list[WorkItem]
    crm: CrmData
    notes: list[str] = field(default_factory=list)
    today: date = field(default_factory=date.today)
    policy: PolicySettings = field(default_factory=PolicySettings)  # segments and size bands

    @property
    def available_reps(self) -> list[Rep]:
        return [r for r in self.reps if r.available]


YOUNG_THRESHOLD = 10_000  # allocations between collections of the youngest generation in a decision


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While open, Python's cycle collector leaves alone the objects that exist when it opens
    (:func:`gc.freeze`: the book, its CRM data and history). A decision allocates enough to run a
    few full collections, and each went over every card, account and deal again (0.1 s of CPU in a
    10k-card decision). Nothing lives longer: what is allocated inside is collected as usual, and
    the objects frozen are handed back to the collector when it closes. The youngest generation is
    collected every ``YOUNG_THRESHOLD`` allocations instead of 700: a 10k-card decision's 285
    collections become 16 (0.032-0.040 s of CPU in the collector -> 0.018-0.022 s). Both are the
    process's: decisions open at once (the review page's jobs run in threads) share one opening,
    and the last to close puts the collector back as the first found it."""
    with _HEAP.lock:
        if not _HEAP.open:
            _HEAP.threshold = gc.get_threshold()
            gc.set_threshold(max(_HEAP.threshold[0], YOUNG_THRESHOLD), *_HEAP.threshold[1:])
            gc.freeze()
        _HEAP.open += 1
    try:
        yield
    finally:
        with _HEAP.lock:
            _HEAP.open -= 1
            if not _HEAP.open:
                gc.unfreeze()
                gc.set_threshold(*_HEAP.threshold)


@dataclass
class _Heap:
    """The decisions inside :func:`frozen_heap` now, and the collector's threshold before the first."""

    open: int = 0
    threshold: tuple[int, ...] = (700, 10, 10)
    lock: threading.Lock = field(default_factory=threading.Lock)


_HEAP = _Heap()


def _segment(account: Account | None, deal: Deal | None, policy: PolicySettings) -> str:
    return segment_of(
        account.sector if account else None,
        account.region if account else None,
        account.employees if account else None,
        deal.value if deal else 0.0,
        policy,
    )


def match_reps(
    reps: list[Rep], members: tuple[Member, ...], explicit: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Rep id -> member id by the explicit table, then email, username, then full name.

    Returns the mapping and notes about reps left unmatched or mappings that point nowhere.
    """
    by_key: dict[str, str] = {}
    named: dict[str, list[Member]] = {}  # full name -> the members of that name
    for m in members:
        # An Asana user's email name often is the Trello username: both identify the member.
        for k in (m.id, m.username, m.email, m.name, m.email.split("@")[0] if m.email else None):
            if k:
                by_key.setdefault(normalise_name(k), m.id)
        if m.name:
            named.setdefault(normalise_name(m.name), []).append(m)
    explicit_n = {normalise_name(k): v for k, v in explicit.items()}
    mapping: dict[str, str] = {}
    notes: list[str] = []
    ambiguous: set[str] = set()  # reps two members would fit: named in a note, never guessed
    for r in reps:
        target = next(
            (
                explicit_n[normalise_name(k)]
                for k in (r.id, r.name, r.email or "")
                if k and normalise_name(k) in explicit_n
            ),
            None,
        )
        if target is not None:
            mid = by_key.get(normalise_name(target))
            if mid is None:
                notes.append(f"members table maps rep {r.name!r} to {target!r}, who is not on the board")
                continue
            mapping[r.id] = mid
            continue
        hits = [
            n
            for k in (r.email, r.name, r.email.split("@")[0] if r.email else None)
            if k and (n := normalise_name(k)) in by_key
        ]
        sure = [k for k in hits if len(named.get(k, ())) < 2]  # a full name two members bear is no match
        if sure:
            mapping[r.id] = by_key[sure[0]]
        elif hits:
            notes.append(_two_fit(r, named[hits[0]]))
            ambiguous.add(r.id)
    _match_loosely([r for r in reps if r.id not in ambiguous], members, explicit_n, mapping, notes)
    known = {normalise_name(k) for r in reps for k in (r.id, r.name, r.email) if k}
    for k in explicit:
        if normalise_name(k) not in known:
            notes.append(
                f"members table names {k!r}, who is no rep in the reps export (by id, name or email): not used"
            )
    return mapping, notes


def _two_fit(rep: Rep, members: list[Member], how: str = "") -> str:
    """The note for a rep several board members would fit by name: none is guessed."""
    named = " and ".join(f"{m.name!r} ({m.username or m.id})" for m in members)
    return (
        f"rep {rep.name!r} ({rep.id}) would fit board members {named} by name{how}: none is guessed; "
        "map them under [members] to give them tasks"
    )


def _match_loosely(
    reps: list[Rep], members: tuple[Member, ...], explicit: Mapping[str, str], mapping: dict[str, str], notes: list[str]
) -> None:
    """Reps still unmatched (and not in the members table) matched by name with accents and word
    order ignored (``Chloé Dubois`` and ``Dubois, Chloe`` are the board's ``Chloe Dubois``), where
    exactly one rep and one free member share that name; each such match, and every rep left, is
    named in a note. Where two members (or two reps) would fit, none is guessed: the note names them."""
    taken = set(mapping.values())
    free: dict[str, list[Member]] = {}
    for m in members:
        if m.id not in taken and m.name:
            free.setdefault(loose_name_key(m.name), []).append(m)
    left = [
        r
        for r in reps
        if r.id not in mapping and not any(k and normalise_name(k) in explicit for k in (r.id, r.name, r.email or ""))
    ]
    wanted: dict[str, list[Rep]] = {}
    for r in left:
        wanted.setdefault(loose_name_key(r.name), []).append(r)
    for r in left:
        key = loose_name_key(r.name)
        fits = free.get(key, []) if key else []
        if len(fits) == 1 and len(wanted[key]) == 1:
            mapping[r.id] = fits[0].id
            notes.append(
                f"rep {r.name!r} matched to board member {fits[0].name!r} by name (accents and word order "
                "ignored); map them under [members] if that is someone else"
            )
        elif len(fits) > 1:
            notes.append(_two_fit(r, fits, " (accents and word order ignored)"))
        elif fits and r is wanted[key][0]:
            named = " and ".join(f"{o.name!r} ({o.id})" for o in wanted[key])
            notes.append(
                f"reps {named} would fit one board member, {fits[0].name!r}, by name (accents and word order "
                "ignored): none is guessed; map the right one under [members] to give them tasks"
            )
        elif not fits:
            notes.append(
                f"rep {r.name!r} ({r.id}) matches no board member by email, username or name; "
                "map them under [members] to give them tasks"
            )


def build_book(
    snapshot: Snapshot,
    crm: CrmData,
    settings: Settings,
    locked_tasks: set[str] | None = None,
    today: date | None = None,
    include_new: bool = True,
    taken_back: Collection[str] = (),
) -> Book:
    """Join the snapshot with the CRM. ``locked_tasks`` are tasks whose owner must stay;
    ``include_new`` adds open deals without a card (when card creation is configured), less
    those of cards put away, unless tasksync's undo put them away (``taken_back``: card ids)."""
    locked_tasks = locked_tasks or set()
    rep_member, notes = match_reps(crm.reps, snapshot.members, settings.members)
    member_rep = {m: r for r, m in rep_member.items()}
    reps = [r for r in crm.reps if r.id in rep_member]
    stage_names = {s.id: s.name for s in snapshot.stages}
    assign_stages = {normalise_name(s) for s in settings.policy.assign_stages}
    links = CrmLinks(crm)

    items: list[WorkItem] = []
    linked_deals: set[str] = set()
    unlinked: list[str] = []
    done: list[str] = []
    undealt: set[str] = set()
    # Members of the board who match no rep (a rep who renamed themselves, a manager): a card a
    # person gave them is theirs, not unowned; it stays (a member who left the board is not here).
    others = {m.id: snapshot.member_names[m.id] for m in snapshot.members if m.id not in member_rep}
    held_by: dict[str, int] = {}
    pinned_unowned: list[str] = []
    found = [(t, *links.find(t.crm_ref)) for t in snapshot.tasks]
    card_of = _deal_cards(found)
    copies: list[str] = []
    for t, deal, account in found:
        if deal is not None and card_of[deal.id] != t.id:
            copies.append(t.title)  # a subtask or a copy: the deal is another card's work
            continue
        if deal is not None:
            linked_deals.add(deal.id)
        else:
            undealt.add(normalise_name(t.title))  # a card that stands for no deal by its link
        if deal is None and account is None:
            if links.closed(t.crm_ref) is not None:
                done.append(t.title)  # its deal was won or lost: not open work
                continue
            unlinked.append(t.title)
        owners = [member_rep[m] for m in t.assignees if m in member_rep]
        other = next((others[m] for m in t.assignees if m in others), None) if not owners else None
        if other is not None and (deal is not None or account is not None):
            held_by[other] = held_by.get(other, 0) + 1
        if t.pinned and not t.assignees and (deal is not None or account is not None):
            pinned_unowned.append(t.title)
        stage = stage_names.get(t.stage_id, "")
        managed = (deal is not None or account is not None) and (
            not assign_stages or normalise_name(stage) in assign_stages
        )
        items.append(
            WorkItem(
                key=t.id,
                title=t.title,
                task_id=t.id,
                stage=stage,
                deal=deal,
                account=account,
                owner=owners[0] if owners else None,
                locked=t.pinned or t.id in locked_tasks or len(owners) > 1 or other is not None,
                pinned=t.pinned and bool(owners),
                owner_left=bool(t.assignees) and not owners and other is None,
                managed=managed,
                priority=t.priority,
                segment=_segment(account, deal, settings.policy),
                due=(deal.close_date if deal and deal.close_date else t.due),
                created=(deal.created if deal and deal.created else (t.created_at.date() if t.created_at else None)),
            )
        )
    notes += _card_notes(held_by, pinned_unowned, done, unlinked, copies)
    if settings.create.enabled and include_new:
        put_away = _put_away(snapshot, links, taken_back)  # their deals get no new card
        items += _to_create(crm, settings, links, linked_deals, put_away, undealt, rep_member, notes)
    return Book(reps, rep_member, items, crm, notes, today or date.today(), settings.policy)


def _put_away(snapshot: Snapshot, links: CrmLinks, taken_back: Collection[str]) -> set[str]:
    """The deals of the cards a person put away (archived, or a task completed), less those tasksync's
    own undo put away (``taken_back``): such a deal gets no new card, the CRM is often behind the
    board (a lead given up on, an old list archived)."""
    refs = {ref for tid, ref in snapshot.archived_refs.items() if tid not in taken_back}
    return {deal.id for ref in refs if (deal := links.find(ref)[0]) is not None}


def _deal_cards(found: Sequence[tuple[Task, Deal | None, Account | None]]) -> dict[str, str]:
    """Deal id -> the card that stands for it: of the cards linking to one deal (a subtask or a
    copy of its card carries its link too), the first created, then the lowest id."""
    first: dict[str, Task] = {}
    for t, deal, _ in found:
        if deal is not None:
            held = first.get(deal.id)
            if held is None or _created_key(t) < _created_key(held):
                first[deal.id] = t
    return {d: t.id for d, t in first.items()}


def _created_key(t: Task) -> tuple[bool, str, str]:
    return (t.created_at is None, t.created_at.isoformat() if t.created_at else "", t.id)


def _card_notes(
    held_by: Mapping[str, int], pinned_unowned: list[str], done: list[str], unlinked: list[str], copies: list[str]
) -> list[str]:
    """The book's notes on cards the division leaves as they are."""
    notes: list[str] = []
    if held_by:
        names = ", ".join(f"{n} ({k} card{'s' if k > 1 else ''})" for n, k in sorted(held_by.items()))
        notes.append(f"cards held by board members who match no rep are left with them: {names}")
    if pinned_unowned:
        notes.append(
            f"{len(pinned_unowned)} pinned card(s) have no owner and are left unowned (unpin them to have "
            f"them divided): {quoted_sample(pinned_unowned)}"
        )
    if done:
        notes.append(f"{len(done)} card(s) of deals won or lost are not counted as open work: {quoted_sample(done)}")
    if unlinked:
        notes.append(f"{len(unlinked)} card(s) link to no CRM record (left as they are): {quoted_sample(unlinked)}")
    if copies:
        notes.append(
            f"{len(copies)} card(s) link to a deal an older card stands for (a subtask or a copy): left as they "
            f"are and not counted as open work, so the deal counts once: {quoted_sample(copies)}"
        )
    return notes


_URL = re.compile(r"^(?:https?://|www\.)", re.I)
_SALESFORCE_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_NAME_END = " -–—:|/,;(["  # what may follow an account's name at the start of a card's title


class CrmLinks:
    """Finds the deal and account a card's CRM link names, as links are written by hand:

    - a deal id, an account id, an account name or a deal name (unique), as exported, or the
      account's name written differently (``Acme, Inc.`` for ``Acme Inc``; unique);
    - a record's URL (Salesforce, HubSpot, Pipedrive, Zoho: its id is one of the path's parts);
    - a Salesforce id in its 15-character form where the export has the 18-character one, or the
      other way round (the 18-character id is the 15-character one and a 3-character suffix);
    - a title that starts with an account's name (``Acme Corp - Renewal``, ``Acme Corp: Q3``),
      the longest such name.
    """

    def __init__(self, crm: CrmData) -> None:
        self.crm = crm
        self.accounts_by_name = {normalise_name(a.name): a for a in crm.accounts}
        loose: dict[str, list[Account]] = {}
        for a in crm.accounts:
            loose.setdefault(account_key(a.name), []).append(a)
        self.accounts_by_key = {k: a[0] for k, a in loose.items() if k and len(a) == 1}
        self.deals_by_account: dict[str, list[Deal]] = {}
        for d in crm.deals:
            if d.account_id:
                self.deals_by_account.setdefault(d.account_id, []).append(d)
        names: dict[str, list[Deal]] = {}
        for d in crm.deals:
            names.setdefault(normalise_name(d.name), []).append(d)
        self.deals_by_name = {n: ds[0] for n, ds in names.items() if len(ds) == 1 and n}
        # 18-character Salesforce ids by their 15-character form (the export's ids, looked up by a card's)
        self.long_ids = {i[:15]: d for i, d in crm.deals_by_id.items() if len(i) == 18 and _SALESFORCE_ID.fullmatch(i)}
        self.closed_by_id = {d.id: d for d in crm.history}  # deals won or lost
        self.closed_long = {i[:15]: d for i, d in self.closed_by_id.items() if len(i) == 18}

    def closed(self, ref: str | None) -> ClosedDeal | None:
        """The deal won or lost that ``ref`` names by its id (or URL, or the other length of a
        Salesforce id), if any."""
        ref = (ref or "").strip()
        for key in self._keys(ref) if ref else []:
            found = self.closed_by_id.get(key)
            if found is None and _SALESFORCE_ID.fullmatch(key):
                found = self.closed_by_id.get(key[:15]) if len(key) == 18 else self.closed_long.get(key)
            if found is not None:
                return found
        return None

    def find(self, ref: str | None) -> tuple[Deal | None, Account | None]:
        """The deal (and its account), else the account (and its deal, when it has exactly one
        open deal) that ``ref`` names; (None, None) when it names none."""
        ref = (ref or "").strip()
        if not ref:
            return None, None
        for key in self._keys(ref):
            deal = self.crm.deals_by_id.get(key) or self._salesforce(key)
            if deal is not None:
                return deal, self.crm.accounts_by_id.get(deal.account_id) if deal.account_id else None
            account = self.crm.accounts_by_id.get(key)
            if account is not None:
                return self._with_deal(account)
        name = normalise_name(ref)
        account = self.accounts_by_name.get(name)
        if account is None and (deal := self.deals_by_name.get(name)) is not None:
            return deal, self.crm.accounts_by_id.get(deal.account_id) if deal.account_id else None
        if account is None:
            account = self.accounts_by_key.get(account_key(ref)) or self._by_prefix(name)
        return self._with_deal(account) if account is not None else (None, None)

    @staticmethod
    def _keys(ref: str) -> list[str]:
        """``ref`` itself, then, for a URL, its path's parts and query values from the end."""
        if not _URL.match(ref):
            return [ref]
        url = ref if "://" in ref else "https://" + ref
        parts = urlsplit(url)
        found = [p for p in parts.path.split("/") if p]
        found += [v for _, v in parse_qsl(parts.query)]
        return [ref, *reversed(found)]

    def _salesforce(self, key: str) -> Deal | None:
        """The deal a Salesforce id names in its other length: 18 characters for a 15-character
        export id, or 15 for an 18-character one."""
        if not _SALESFORCE_ID.fullmatch(key):
            return None
        return self.crm.deals_by_id.get(key[:15]) if len(key) == 18 else self.long_ids.get(key)

    def _by_prefix(self, name: str) -> Account | None:
        """The account with the longest name that starts ``name`` and is ended there by a space
        or a mark (``acme corp - renewal``, ``acme corp:q3``, ``acme corp(renewal)``)."""
        for i in range(len(name) - 1, 0, -1):
            head = name[:i].rstrip(_NAME_END) if name[i] in _NAME_END else ""
            if head and (account := self.accounts_by_name.get(head)) is not None:
                return account
        return None

    def _with_deal(self, account: Account) -> tuple[Deal | None, Account]:
        deals = self.deals_by_account.get(account.id, ())
        return (deals[0] if len(deals) == 1 else None), account


def _to_create(
    crm: CrmData,
    settings: Settings,
    links: CrmLinks,
    linked_deals: set[str],
    put_away: set[str],
    undealt: set[str],
    rep_member: Mapping[str, str],
    notes: list[str],
) -> list[WorkItem]:
    """Work items for the open deals that get a new card (:func:`_new_items`), less those a card
    stands for already; each kind left out is named in ``notes``. ``put_away``: the deals of the
    cards a person put away; ``undealt``: the titles (normalised) of the cards whose link names
    no deal."""
    new = _new_items(crm, settings, linked_deals, rep_member)
    dropped = [i.title for i in new if i.deal is not None and i.deal.id in put_away]
    if dropped:
        notes.append(
            f"{len(dropped)} open deal(s) have only an archived card or a completed task; "
            f"none is made anew: {quoted_sample(dropped)}"
        )
    new = [i for i in new if i.deal is None or i.deal.id not in put_away]
    # Nor one whose name a card linked to no deal bears already (cards linked by account name
    # name their account, not their deal): a second card of the same title would be a duplicate.
    # A card linked to another deal of the same name (a renewal) stands for that one only.
    twins = [i.title for i in new if normalise_name(i.title) in undealt]
    if twins:
        notes.append(
            f"{len(twins)} open deal(s) without a linked card get none: cards already bear their "
            f"names: {quoted_sample(twins)}"
        )
    return [i for i in new if normalise_name(i.title) not in undealt]


def quoted_sample(titles: list[str], shown: int = 5) -> str:
    """The first ``shown`` titles, quoted, and how many more (for notes that name cards or deals)."""
    more = f" and {len(titles) - shown} more" if len(titles) > shown else ""
    return ", ".join(repr(t) for t in titles[:shown]) + more


def _new_items(
    crm: CrmData, settings: Settings, linked_deals: set[str], rep_member: Mapping[str, str]
) -> list[WorkItem]:
    """Work items for open deals without a card, in the stages cards are created for."""
    wanted = {normalise_name(s) for s in settings.create.stages}
    items: list[WorkItem] = []
    for d in crm.deals:
        if d.id in linked_deals or (wanted and normalise_name(d.stage) not in wanted):
            continue
        account = crm.accounts_by_id.get(d.account_id) if d.account_id else None
        items.append(
            WorkItem(
                key=f"new:{d.id}",
                title=d.name,
                task_id=None,
                stage=settings.create.target or settings.stages.get(d.stage, d.stage),
                deal=d,
                account=account,
                owner=d.owner if d.owner in rep_member else None,
                segment=_segment(account, d, settings.policy),
                due=d.close_date,
                created=d.created,
            )
        )
    return items
