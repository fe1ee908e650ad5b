"""The engine: snapshot → desired state → plan → apply → record, and undo.

Policies say what each task should look like; the engine turns that into the fewest changes and
leaves alone every field a person changed since tasksync last wrote it (a conflict, unless
forced). This module decides and diffs (:func:`prepare_book` → :func:`decide` → :func:`diff`,
composed by :func:`make_plan`); :mod:`tasksync.sync.apply` writes a plan through the journal,
resumes an interrupted apply and undoes (its names are re-exported here).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from tasksync.crm.records import CrmData
from tasksync.errors import SafetyStop
from tasksync.model import (
    BoardRef,
    Change,
    Conflict,
    Field,
    FieldValue,
    JournalStatus,
    NewTask,
    Plan,
    PlanKind,
    Snapshot,
    Task,
    canonical,
)
from tasksync.policies import (
    Book,
    Decision,
    Decisions,
    Policy,
    Reason,
    ReasonKind,
    Rules,
    WorkItem,
    build_book,
    get_policy,
)
from tasksync.policies.book import quoted_sample
from tasksync.settings import Settings
from tasksync.sync.apply import (
    ApplyOutcome,
    Progress,
    apply_plan,
    human_edits,
    make_undo_plan,
    new_plan_id,
    resume,
    settle_unknown,
)
from tasksync.sync.state import StateStoreProtocol

__all__ = [
    "ApplyOutcome",
    "PlanResult",
    "Progress",
    "SyncState",
    "apply_plan",
    "decide",
    "diff",
    "human_edits",
    "make_plan",
    "make_undo_plan",
    "prepare_book",
    "resume",
    "settle_unknown",
]


@dataclass
class PlanResult:
    """A plan with what it was computed from, for presentation."""

    plan: Plan
    snapshot: Snapshot
    book: Book
    decisions: Decisions


@dataclass(frozen=True)
class SyncState:
    """What the state store knows of one board before a plan, as a plain value so that
    :func:`diff` stays pure: the last value tasksync wrote or saw per task and field, the fields
    a person owns for good, and the CRM keys of the cards tasksync created (or is still creating:
    a create interrupted or unanswered is finished by :func:`resume`, never planned twice)."""

    last_written: dict[tuple[str, Field], FieldValue] = field(default_factory=dict)
    person_owned: set[tuple[str, Field]] = field(default_factory=set)
    created: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, store: StateStoreProtocol, board: BoardRef) -> SyncState:
        created = store.created(board)
        for status in (JournalStatus.PENDING, JournalStatus.UNKNOWN):
            for r in store.journal_rows(board, status):
                if r.op == "create" and r.key:
                    created.setdefault(r.key, "")
        return cls(store.last_written(board), store.person_owned(board), created)


def prepare_book(
    settings: Settings,
    snapshot: Snapshot,
    crm: CrmData,
    state: SyncState,
    *,
    force: bool = False,
    today: date | None = None,
    locked: Collection[str] = (),
) -> Book:
    """Join the board and the CRM into the book a policy decides on: cards whose owner a person
    changed are locked (and the ``locked`` ones the caller holds), and deals tasksync already made
    a card for are not offered again."""
    board = snapshot.board
    if not snapshot.tasks and state.last_written and not force:
        raise SafetyStop(
            f"{board}: the board reads empty but tasksync has written {len(state.last_written)} fields on it; "
            "refusing to plan (use --force if the board really was emptied)"
        )
    edits = {} if force else human_edits(snapshot, state.last_written, state.person_owned)
    held = {task_id for (task_id, f) in edits if f is Field.ASSIGNEES} | set(locked)
    # The cards tasksync made and then put away itself (an undo of the plan that made them): their
    # deals are offered again, as before that plan.
    taken_back = {task_id for (task_id, f), v in state.last_written.items() if f is Field.CLOSED and v is True}
    made = {key for key, task_id in state.created.items() if task_id not in taken_back}
    book = build_book(snapshot, crm, settings, held, today, taken_back=taken_back)
    book.items = [i for i in book.items if not (i.task_id is None and i.deal and i.deal.id in made)]
    return book


def decide(book: Book, policy: Policy, settings: Settings) -> Decisions:
    """The policy's decisions for every item of the book (owner, priority, reason). The policy
    sees only the ``[policy]`` and ``[priority]`` sections (:class:`Rules`), never the secrets."""
    out = policy.decide(book, Rules.of(settings))
    out.notes.extend(_left_with_away_reps(book, out))
    return out


def _left_with_away_reps(book: Book, decisions: Decisions) -> list[str]:
    """A note naming the cards the decisions leave with reps who are away, and why as far as the
    book tells: kept as a person set them, or with their account, which no available rep could
    take whole (pinned to another rep, or over a capacity). Pinned cards have their own note."""
    away = {r.id: r.name for r in book.reps if not r.available}
    held: dict[str, list[int]] = {}  # rep id -> [locked, with the account]
    for item in book.items:
        d = decisions.by_key.get(item.key)
        owner = d.owner if d is not None and d.owner is not None else item.owner
        if item.task_id is None or not item.managed or item.pinned or owner not in away:
            continue  # unmanaged: never moved; pinned: a note of its own (team.overrides)
        counts = held.setdefault(owner, [0, 0])
        counts[0 if item.locked else 1] += 1
    if not held:
        return []
    parts = []
    for rep, (locked, rest) in sorted(held.items(), key=lambda kv: away[kv[0]]):
        why = [f"{locked} kept as a person set it"] if locked else []
        why += (
            [f"{rest} with an account no available rep could take whole (pinned to another rep, or over a capacity)"]
            if rest
            else []
        )
        parts.append(f"{away[rep]} ({locked + rest}: {'; '.join(why)})")
    return [f"cards stay with reps who are away: {', '.join(parts)}"]


def _reason(reason: Reason | str | None) -> tuple[str, str]:
    """(text, kind) of a decision's reason; a plug-in's plain text is of kind "other"."""
    if isinstance(reason, Reason):
        return reason.text(), reason.kind.value
    return (reason or "", ReasonKind.OTHER.value if reason else "")


def diff(
    settings: Settings,
    snapshot: Snapshot,
    book: Book,
    decisions: Decisions,
    state: SyncState,
    *,
    plan_id: str,
    created_at: datetime,
    force: bool = False,
    kind: PlanKind = PlanKind.SYNC,
    notes: list[str] | None = None,
) -> Plan:
    """The fewest changes that take ``snapshot`` to what ``decisions`` want, leaving every field
    a person owns alone (a conflict). Pure: no I/O, the same inputs give the same plan."""
    board = snapshot.board
    person = set() if force else state.person_owned
    edits = {} if force else human_edits(snapshot, state.last_written, person)
    if not settings.policy.sync_stage:  # lists are the team's to move: no edit of theirs to record
        edits = {k: v for k, v in edits.items() if k[1] is not Field.STAGE}
    plan = Plan(
        id=plan_id,
        board=board,
        kind=kind,
        base_fingerprint=snapshot.fingerprint(),
        created_at=created_at,
        notes=[*(notes or []), *book.notes, *decisions.notes],
    )
    rep_members = set(book.rep_member.values())
    options = {o.casefold(): o for o in snapshot.priority_options}
    plan.notes.extend(_priority_notes(settings, snapshot, options))
    stage_by_name = {s.name.casefold(): s.id for s in snapshot.stages}
    tiers = {t.casefold() for t in settings.priority.tiers}
    kept: dict[str, list[str]] = {}  # a priority that is no tier ("On hold"), set by a person -> cards
    for item in book.items:
        d = decisions.by_key.get(item.key)
        if d is None:
            continue
        owner_member = book.rep_member.get(d.owner) if d.owner else None
        priority = options.get(d.priority.casefold()) if d.priority else None
        if item.task_id is None:
            if d.owner is None and item.owner is not None:
                # Left where it is: a new card's owner is its deal's owner in the CRM (the policy
                # counted it there; created unassigned, the next run would find a card to place).
                owner_member = book.rep_member.get(item.owner)
            _add_create(plan, item, d, owner_member, priority, stage_by_name)
            continue
        task = snapshot.task(item.task_id)
        if task is None:
            continue
        wanted = _owner_wanted(snapshot, task, owner_member, rep_members)
        if priority is not None and task.priority is not None and task.priority.casefold() not in tiers and not force:
            kept.setdefault(task.priority, []).append(task.title)  # a state the tiers do not name
        elif priority is not None:
            wanted[Field.PRIORITY] = priority
        if settings.policy.sync_stage and item.deal is not None:
            target = stage_by_name.get(settings.stages.get(item.deal.stage, item.deal.stage).casefold())
            if target is not None:
                wanted[Field.STAGE] = target
        for f, value in wanted.items():
            current = task.value(f)
            if current == value:
                continue
            if (task.id, f) in edits:
                plan.conflicts.append(Conflict(task.id, f, edits[(task.id, f)], current, value, task.title))
                continue
            if f is Field.ASSIGNEES:
                reason, why = _reason(d.reason)
            elif f is Field.PRIORITY:
                reason, why = _reason(d.priority_reason or Reason(ReasonKind.PRIORITY, figures=(("score", d.score),)))
            else:
                reason, why = f"CRM stage {item.deal.stage if item.deal else ''}", ReasonKind.STAGE.value
            plan.changes.append(Change(task.id, f, current, value, reason, task.title, why))
    for option, titles in sorted(kept.items()):
        plan.notes.append(
            f"{len(titles)} card(s) keep the priority {option!r}, which is not a tier, as a person set it "
            f"(--force gives them tiers): {quoted_sample(titles)}"
        )
    _add_new_edits(plan, snapshot, edits, person)
    return plan


def _owner_wanted(
    snapshot: Snapshot, task: Task, owner_member: str | None, rep_members: set[str]
) -> dict[Field, FieldValue]:
    """The card's assignees the decision wants (none when it names no owner): other people on the
    card stay with the new owner, unless they are no longer on the board (a member who left:
    Trello refuses a card's members that are not the board's)."""
    if owner_member is None:
        return {}
    others = (
        []
        if snapshot.max_assignees == 1
        else [m for m in task.assignees if m not in rep_members and m in snapshot.members_by_id]
    )
    return {Field.ASSIGNEES: canonical([*others, owner_member])}


def _priority_notes(settings: Settings, snapshot: Snapshot, options: dict[str, str]) -> list[str]:
    """Why some priorities cannot be written: the board has no priority field, or no option (or
    label) for some tiers."""
    if not options:
        return [f"the board has no priority field {settings.priority.field!r}: priorities not written"]
    missing = [t for t in settings.priority.tiers if t.casefold() not in options]
    if not missing:
        return []
    names = ", ".join(map(repr, missing))
    where = (
        f"the board has no label {names}"
        if settings.priority.use_labels
        else f"the priority field {settings.priority.field!r} has no option {names} "
        f"(its options: {', '.join(snapshot.priority_options)})"
    )
    return [f"{where}: those priorities are not written; [priority] tiers names them"]


def _add_create(
    plan: Plan,
    item: WorkItem,
    d: Decision,
    owner_member: str | None,
    priority: str | None,
    stage_by_name: dict[str, str],
) -> None:
    """A card for a CRM deal that has none, in the list of the deal's stage (a note if none)."""
    if item.deal is None:
        return  # a new-card item always carries its deal; nothing to create without one
    stage_id = stage_by_name.get(item.stage.casefold())
    if stage_id is None:
        plan.notes.append(f"deal {item.deal.id}: no list named {item.stage!r} for its card; not created")
        return
    why = _reason(d.reason)[0] or ("with its deal's owner in the CRM" if owner_member else "")
    plan.creates.append(
        NewTask(
            key=item.deal.id,
            title=item.title,
            stage_id=stage_id,
            assignees=(owner_member,) if owner_member else (),
            priority=priority,
            description=f"CRM deal {item.deal.id}",
            due=item.deal.close_date,
            reason="; ".join(part for part in ("open CRM deal without a card", why) if part),
            reason_kind=ReasonKind.NEW_CARD.value,
        )
    )


def _add_new_edits(
    plan: Plan, snapshot: Snapshot, edits: dict[tuple[str, Field], FieldValue], person: set[tuple[str, Field]]
) -> None:
    """A person's new edits the policy leaves as they are: not conflicts (nothing is wanted against
    them), but listed once so that applying the plan records them as the person's."""
    seen = {(c.task_id, c.field) for c in plan.conflicts}
    for (task_id, f), written in edits.items():
        task = snapshot.task(task_id)
        if task is not None and (task_id, f) not in seen and (task_id, f) not in person:
            plan.edits.append(Conflict(task_id, f, written, task.value(f), task.value(f), task.title))


def make_plan(
    settings: Settings,
    snapshot: Snapshot,
    crm: CrmData,
    store: StateStoreProtocol,
    *,
    force: bool = False,
    kind: PlanKind = PlanKind.SYNC,
    today: date | None = None,
    locked: Collection[str] = (),
) -> PlanResult:
    """Read the board's state, then decide and diff: the plan that takes ``snapshot`` to what the
    configured policy wants. The owners of the ``locked`` tasks stay (the whole division, priorities
    included, is decided around them)."""
    settle_unknown(store, snapshot)
    state = SyncState.read(store, snapshot.board)
    book = prepare_book(settings, snapshot, crm, state, force=force, today=today, locked=locked)
    decisions = decide(book, get_policy(settings.policy.name), settings)
    plan = diff(
        settings,
        snapshot,
        book,
        decisions,
        state,
        plan_id=new_plan_id(),
        created_at=datetime.now(UTC),
        force=force,
        kind=kind,
        notes=_crm_notes(crm),
    )
    return PlanResult(plan, snapshot, book, decisions)


def _crm_notes(crm: CrmData, limit: int = 20) -> list[str]:
    notes = crm.problems[:limit]
    if len(crm.problems) > limit:
        notes.append(f"... and {len(crm.problems) - limit} more CRM problems (see `tasksync crm check`)")
    return notes
