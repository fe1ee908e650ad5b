"""The TOML file's sections as typed models (``[policy]``, ``[priority]``, ``[crm]``, ...): what a team
decides, validated with ``extra="forbid"`` so a misspelt key is an error naming it. The whole
configuration, secrets and boards are in :mod:`tasksync.settings`, which re-exports these.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasksync.defaults import SERVICE_INTERVAL


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LocalSettings(_Section):
    """A board kept as a JSON file in Trello's board-export shape."""

    path: Path = Path("board.json")


class TrelloSettings(_Section):
    """Trello boards, by id or URL. Key and token come from the environment."""

    boards: list[str] = Field(default_factory=list)
    api_url: str | None = None  # overrides TASKSYNC_TRELLO_API_URL when set here
    create_priority_field: bool = False  # consent to create the priority custom field


class AsanaSettings(_Section):
    """An Asana project, by gid or URL, and its workspace. The token comes from the environment."""

    project: str = ""
    workspace: str = ""
    api_url: str | None = None
    requests_per_minute: int = Field(default=150, gt=0)  # 150 on free plans, 1,500 on paid ones


class LinkSettings(_Section):
    """How a card is linked to its CRM record.

    ``custom_field``: the value of the custom field ``field``; ``marker``: a ``[tasksync:ID]``
    marker in the description (the marker is also honoured with the other modes);
    ``account_name``: the card's title is (or starts with) the account's name.
    """

    by: Literal["custom_field", "marker", "account_name"] = "custom_field"
    field: str = "CRM ID"


class PrioritySettings(_Section):
    """Where priority lives on the board and how tiers are cut."""

    field: str = "Priority"  # a list-type custom field (Trello) or enum field (Asana)
    use_labels: bool = False  # Trello: priority as labels named like the tiers instead
    tiers: list[str] = Field(default_factory=lambda: ["P1", "P2", "P3", "P4"], min_length=1)
    # Share of tasks in each tier but the last, by expected value (the rest go to the last).
    shares: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.35])
    hysteresis: float = Field(default=0.1, ge=0)  # a task keeps its tier unless its score moves this far past a cut
    # Adjust the score, then cut: the shares hold whatever the adjustments.
    due_soon_days: int = Field(default=14, ge=0)  # closing within this many days: × due_soon_factor
    stale_days: int = Field(default=120, ge=0)  # open longer than this: × stale_factor
    due_soon_factor: float = Field(default=2.0, ge=1.0)
    stale_factor: float = Field(default=0.5, gt=0.0, le=1.0)

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if any(not 0 <= x <= 1 for x in v):
            raise ValueError(f"each share must be between 0 and 1, got {v}")
        if sum(v) > 1 + 1e-9:
            raise ValueError(f"the shares add up to {sum(v):g}, more than 1")
        return v

    @model_validator(mode="after")
    def _tiers(self) -> PrioritySettings:
        folded = [t.casefold() for t in self.tiers]
        if len(set(folded)) != len(folded):
            raise ValueError(f"tiers: the same tier is named twice in {self.tiers}")
        if "shares" not in self.model_fields_set:  # not given: fit the defaults to the tiers named
            self.shares = default_shares(len(self.tiers))
        return self


def default_shares(tiers: int) -> list[float]:
    """Shares of the tiers but the last when ``[priority] shares`` is not set: a small top tier,
    growing shares below it (4 tiers: 10%, 25%, 35% and the last 30%)."""
    known = {1: [], 2: [0.3], 3: [0.15, 0.35], 4: [0.1, 0.25, 0.35]}
    return list(known.get(tiers, [round(1 / tiers, 4)] * (tiers - 1)))


class SegmentRule(_Section):
    """A named segment: every condition given must hold (lists mean any of)."""

    name: str
    sectors: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    size_bands: list[str] = Field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None


class PolicySettings(_Section):
    """Division and priority rules."""

    name: str = "optimal"
    band: float = Field(default=0.10, ge=0)  # each available rep's open cards within ±band of the mean
    value_band: float = Field(default=0.20, ge=0.0)  # and expected value within ±value_band; 0: off
    # The value band's centre per rep: "mean" (the mean of available reps) or "quota" (the rep's
    # share of the team's quota: quota ÷ mean quota × the mean; reps without a quota at the mean).
    value_target: Literal["mean", "quota"] = "mean"
    # Deprecated (both bands now hold at once); accepted for one release and ignored with a note.
    balance_by: Literal["count", "expected_value"] | None = None
    keep_accounts_together: bool = True  # all open cards of one account with one rep
    keep_current_owner: bool = True
    # With keep_current_owner: an owned card moves for value alone only when its fit-weighted
    # expected value with the new rep exceeds its owner's by more than min_gain × its expected value.
    min_gain: float = Field(default=1.0, ge=0.0)
    move_from_unavailable: bool = True  # give away open tasks of reps marked away
    assign_stages: list[str] = Field(default_factory=list)  # empty: every stage
    pin_label: str = "pinned"  # cards with this label keep their owner
    size_bands: dict[str, float] = Field(
        default_factory=lambda: {"small": 0.0, "mid": 50.0, "large": 500.0, "enterprise": 5000.0}
    )
    segments: list[SegmentRule] = Field(default_factory=list)
    smoothing: float = Field(default=20.0, ge=0)  # pseudo-deals pulling small samples towards the wider mean
    # Fit bonuses (share of expected value) when choosing a rep for a task.
    sector_weight: float = Field(default=0.15, ge=0)  # the task's sector is one of the rep's strengths
    region_weight: float = Field(default=0.10, ge=0)  # the rep covers the account's region
    role_weight: float = Field(default=0.15, ge=0)  # hunter on a prospect, farmer on an existing customer
    continuity_weight: float = Field(default=0.10, ge=0)  # the rep already owns the account in the CRM
    sync_stage: bool = False  # move cards to the list of their CRM deal stage
    # A safety net only: the solver stops on deterministic work limits; if it ever runs this many
    # seconds the deterministic fallback division is used and the notes say so.
    time_limit: float = Field(default=120.0, gt=0)
    # Processes that divide a big book's blocks at once (optimal, 200+ available reps): the plan is
    # the same with any number; more cut the wall time on a machine with free cores, at ~30% more
    # CPU in all (each block's cards go to a worker and its division comes back). 1: in this process.
    workers: int = Field(default=1, ge=1, le=64)
    # Optimal policy (issue 5): all optional, defaults keep earlier behaviour.
    rebalance_only: bool = False  # move only tasks outside the band or of away reps
    move_cost: float = Field(default=1.0, ge=0)  # deprecated name of min_gain, used only when min_gain is not set
    candidate_reps: int = Field(default=10, ge=1)  # reps considered per account on big books (best fit + a spread)
    stage_order: list[str] = Field(default_factory=list)  # CRM stages, earliest first
    # P(win) lift per unit of stage progress (0..1), centred on the middle
    stage_weight: float = Field(default=0.0, ge=0, le=1)

    @field_validator("size_bands")
    @classmethod
    def _size_bands(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if x < 0}
        if bad:
            raise ValueError(f"size bands are numbers of employees, not negative: {bad}")
        return v

    @field_validator("band", "value_band")
    @classmethod
    def _band(cls, v: float) -> float:
        if v > 1:  # band = 10 meant ±10%: ±1000% is no band, and its lower end was below zero
            raise ValueError(f"a band is a share of the mean, at most 1: 0.10 is ±10% (for ±{v:g}%: {v / 100:g})")
        return v

    @field_validator("value_target", mode="before")
    @classmethod
    def _value_target(cls, v: object) -> object:
        if v not in ("mean", "quota"):
            raise ValueError(
                "value_target is 'mean' (the mean expected value of available reps) or 'quota' "
                "(each rep's share of the team's quota)"
            )
        return v

    @property
    def gain_threshold(self) -> float:
        """``min_gain``, or the deprecated ``move_cost`` when only that one is set."""
        if "move_cost" in self.model_fields_set and "min_gain" not in self.model_fields_set:
            return self.move_cost
        return self.min_gain

    def deprecation_notes(self) -> list[str]:
        """One line per deprecated key in use."""
        notes = []
        if self.balance_by is not None:
            notes.append(
                f"[policy] balance_by = {self.balance_by!r} is deprecated and ignored: both bands now hold at once "
                "(band for open cards, value_band for expected value; value_band = 0 turns the value band off)"
            )
        if "move_cost" in self.model_fields_set:
            notes.append("[policy] move_cost is deprecated: use min_gain (same meaning)")
        return notes


class CreateSettings(_Section):
    """Cards for open CRM deals that have no card yet."""

    enabled: bool = False
    stages: list[str] = Field(default_factory=list)  # CRM stages to create cards for
    # The list/section new cards go to (default: the list mapped from the deal's stage).
    target: str | None = Field(default=None, alias="list")


class CrmFiles(_Section):
    reps: str = "reps.csv"
    accounts: str = "accounts.csv"
    deals: str = "deals.csv"
    history: str = "history.csv"


class CrmFileOptions(_Section):
    """How to read one export (``[crm.options.<kind>]``); unset keys fall back to ``[crm]``."""

    preset: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None
    date_order: Literal["auto", "dmy", "mdy", "ymd"] | None = None
    fill_down: bool | None = None


class CrmSettings(_Section):
    """Where the CRM exports are and how their columns are named.

    ``columns.<kind>`` maps tasksync's field names to the export's header names, so a new CRM
    needs a config change, not a code change: a header, a list of headers whose cells are
    joined with a space (``name = ["First Name", "Last Name"]``), or ``""`` for an optional
    field the export does not have. A header may feed several fields. A configured header
    missing from the file is an error. Without a mapping, headers are matched against the
    built-in presets (``preset = "auto"``) and common English and Chinese header names.
    """

    folder: Path = Path("crm")
    files: CrmFiles = Field(default_factory=CrmFiles)
    columns: dict[str, dict[str, str | list[str]]] = Field(default_factory=dict)
    stage_won: list[str] = Field(default_factory=lambda: ["won", "closed won"])
    stage_lost: list[str] = Field(default_factory=lambda: ["lost", "closed lost"])
    date_order: Literal["auto", "dmy", "mdy", "ymd"] = "auto"
    max_bad_rows: float = 0.0  # share of rows that may be skipped before a file is rejected
    # "auto" (best header match) or one of salesforce, hubspot, zoho, pipedrive, fxiaoke,
    # xiaoshouyi, wukong, generic.
    preset: str = "auto"
    encoding: str | None = None  # None: detected (byte-order mark, UTF-8, charset-normalizer)
    delimiter: str | None = None  # None: sniffed; or one character, "tab", "semicolon"...
    sheet: str | int | None = None  # XLSX: sheet name or 1-based number; None: the first
    # A grouped report's account/owner cells blank below each group's first row: carried down
    # (true), kept blank (false), or as detected (unset; see tasksync.crm.grouped).
    fill_down: bool | None = None
    options: dict[str, CrmFileOptions] = Field(default_factory=dict)  # per kind overrides
    # The currency amounts are planned in (a code: "USD"). Amounts in another (a code or symbol in
    # the cell, or a currency column beside it) are converted at `rates`; a currency without a rate
    # is a problem naming the row. "": amounts are added as they are (mixed currencies are noted).
    currency: str = Field(default="", pattern=r"^([A-Z]{3})?$")
    rates: dict[str, float] = Field(default_factory=dict)  # 1 unit of each currency = this many of `currency`

    @field_validator("rates")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [f"{k} = {r}" for k, r in v.items() if not re.fullmatch(r"[A-Z]{3}", k) or not r > 0]
        if bad:
            raise ValueError(f"rates are currency codes with a positive rate (EUR = 1.08); not {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def _rates_need_a_currency(self) -> CrmSettings:
        if self.rates and not self.currency:
            raise ValueError('crm.rates converts into crm.currency: set it (currency = "USD")')
        return self


class ServiceSettings(_Section):
    """The scheduled sync service (``tasksync serve``)."""

    interval: float = Field(default=SERVICE_INTERVAL, gt=0)  # seconds between change checks
    full_read_every: float = Field(default=3600.0, gt=0)  # seconds between full reads whatever change detection says
    rebalance_every: float = Field(default=0.0, ge=0)  # seconds between whole-book rebalances; 0: only by command
    rebalance_at: str | None = Field(default=None, pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")  # or daily "HH:MM" UTC
    max_move_share: float = Field(default=0.25, ge=0, le=1)  # pause instead of applying a plan moving more of the tasks
    # the same guard for the scheduled (or --rebalance) whole-book rebalance
    max_rebalance_share: float = Field(default=0.5, ge=0, le=1)
    # pause instead of creating more cards than this share of the board's
    max_create_share: float = Field(default=0.25, ge=0, le=1)
    max_crm_drop: float = Field(default=0.5, ge=0, le=1)  # pause when an export lost more than this share of its rows
    backoff_max: float = Field(default=300.0, gt=0)  # longest wait between retries during an API outage
    stale_after: float = Field(default=0.0, ge=0)  # `tasksync status`: stale when no run for this long (0: 3 intervals)
    log_json: bool = False  # one JSON object per log line
    trello_callback_url: str | None = None  # the callbackURL the Trello webhook was registered with


class WriteSettings(_Section):
    """What tasksync writes besides owners and priorities."""

    # one short comment per card whose owner changes or that is created (and on undo);
    # unset: on for `tasksync serve`, off for `apply`
    comment: bool | None = None


class WebSettings(_Section):
    """The review page, the Trello Power-Up and the webhook endpoints (``tasksync web``)."""

    enabled: bool = False  # `tasksync serve` also serves the review page
    host: str = "127.0.0.1"  # loopback unless configured; put a TLS reverse proxy in front
    port: int = Field(default=8780, ge=0, le=65535)
    public_url: str | None = None  # https://tasksync.example.com when behind a proxy (cookies get Secure)
    admin_token_path: Path = Path(".tasksync/web-admin-token")  # generated once, mode 0600
    powerup_api_key: str | None = None  # the Power-Up's Trello API key (public by Trello's design)
    powerup_app_name: str = "tasksync"
    powerup_script: str = "https://p.trellocdn.com/power-up.min.js"  # Trello's client library
    request_timeout: float = Field(default=10.0, gt=0)  # seconds a client has to send a whole request
    max_active: int = Field(default=64, ge=1)  # requests handled at once (webhooks, pages); /healthz apart
    max_connections: int = Field(default=10000, ge=1)  # open connections before new requests get 503
    backlog: int = Field(default=2048, ge=1)  # pending connections the kernel queues
