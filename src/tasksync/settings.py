"""Configuration: one TOML file for what a team decides, the environment for secrets.

Secrets (tokens, keys) are read only from ``TASKSYNC_*`` environment variables (or a ``.env``
file) and never from the TOML file, so a config can be committed and shared. Relative paths in
the TOML file are resolved against the file's own folder.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasksync.errors import ConfigError

__all__ = [
    "AsanaSettings",
    "CreateSettings",
    "CrmFileOptions",
    "CrmSettings",
    "LinkSettings",
    "LocalSettings",
    "PolicySettings",
    "PrioritySettings",
    "Secrets",
    "SegmentRule",
    "ServiceSettings",
    "Settings",
    "TrelloSettings",
    "load_settings",
]


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
    requests_per_minute: int = 150  # 150 on free plans, 1,500 on paid ones
    full_read_every: int = 3600  # seconds between full reads when reading incrementally


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
    tiers: list[str] = Field(default_factory=lambda: ["P1", "P2", "P3", "P4"])
    # Share of tasks in each tier but the last, by expected value (the rest go to the last).
    shares: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.35])
    hysteresis: float = 0.1  # a task keeps its tier unless its score moves this far past a cut
    # Adjust the score, then cut: the shares hold whatever the adjustments.
    due_soon_days: int = 14  # a deal closing within this many days counts ``due_soon_factor`` × its score
    stale_days: int = 120  # a deal open longer than this counts ``stale_factor`` × its score
    due_soon_factor: float = Field(default=2.0, ge=1.0)
    stale_factor: float = Field(default=0.5, gt=0.0, le=1.0)


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
    band: float = 0.10  # each available rep's open cards within ±band of the mean
    value_band: float = Field(default=0.20, ge=0.0)  # and expected value within ±value_band; 0: off
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
    smoothing: float = 20.0  # pseudo-deals pulling small samples towards the wider mean
    # Fit bonuses (share of expected value) when choosing a rep for a task.
    sector_weight: float = 0.15  # the task's sector is one of the rep's strengths
    region_weight: float = 0.10  # the rep covers the account's region
    role_weight: float = 0.15  # hunter on a prospect, farmer on an existing customer
    continuity_weight: float = 0.10  # the rep already owns the account in the CRM
    sync_stage: bool = False  # move cards to the list of their CRM deal stage
    # A safety net only: the solver stops on deterministic work limits; if it ever runs this many
    # seconds the deterministic fallback division is used and the notes say so.
    time_limit: float = 120.0
    # Optimal policy (issue 5): all optional, defaults keep earlier behaviour.
    rebalance_only: bool = False  # move only tasks outside the band or of away reps
    move_cost: float | None = None  # deprecated name of min_gain, used when min_gain is not set
    candidate_reps: int = 10  # reps considered per account on big books (best fit + a spread)
    stage_order: list[str] = Field(default_factory=list)  # CRM stages, earliest first
    stage_weight: float = 0.0  # P(win) lift per unit of stage progress (0..1), centred on the middle

    @property
    def gain_threshold(self) -> float:
        """``min_gain``, or the deprecated ``move_cost`` when only that one is set."""
        if self.move_cost is not None and "min_gain" not in self.model_fields_set:
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
        if self.move_cost is not None:
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


class CrmSettings(_Section):
    """Where the CRM exports are and how their columns are named.

    ``columns.<kind>`` maps tasksync's field names to the export's header names, so a new CRM
    needs a config change, not a code change. Without it, headers are matched against the
    built-in presets (``preset = "auto"``) and common English and Chinese header names.
    """

    folder: Path = Path("crm")
    files: CrmFiles = Field(default_factory=CrmFiles)
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
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
    options: dict[str, CrmFileOptions] = Field(default_factory=dict)  # per kind overrides


class ServiceSettings(_Section):
    """The scheduled sync service (``tasksync serve``)."""

    interval: float = Field(default=60.0, gt=0)  # seconds between change checks
    full_read_every: float = 3600.0  # seconds between full reads whatever change detection says
    rebalance_every: float = 0.0  # seconds between whole-book rebalances; 0: only by command
    rebalance_at: str | None = Field(default=None, pattern=r"^([01]?\d|2[0-3]):[0-5]\d$")  # or daily "HH:MM" UTC
    max_move_share: float = 0.25  # pause instead of applying a plan moving more of the tasks
    max_rebalance_share: float = 0.5  # the same guard for the scheduled (or --rebalance) whole-book rebalance
    max_crm_drop: float = 0.5  # pause when an export lost more than this share of its rows
    backoff_max: float = 300.0  # longest wait between retries during an API outage
    stale_after: float = 0.0  # `tasksync status`: stale when no run for this long (0: 3 intervals)
    log_json: bool = False  # one JSON object per log line
    trello_callback_url: str | None = None  # the callbackURL the Trello webhook was registered with


class Secrets(BaseSettings):
    """Secrets and endpoints from the environment (``TASKSYNC_*``) or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="TASKSYNC_", env_file=".env", extra="ignore")

    trello_key: SecretStr | None = None
    trello_token: SecretStr | None = None
    trello_api_url: str = "https://api.trello.com/1"
    asana_token: SecretStr | None = None
    asana_api_url: str = "https://app.asana.com/api/1.0"
    trello_secret: SecretStr | None = None  # app secret: verifies Trello webhook signatures
    asana_webhook_secret: SecretStr | None = None  # verifies Asana webhook signatures


class Settings(_Section):
    """The whole configuration of one board or project."""

    connector: Literal["local", "trello", "asana"] = "local"
    local: LocalSettings = Field(default_factory=LocalSettings)
    trello: TrelloSettings = Field(default_factory=TrelloSettings)
    asana: AsanaSettings = Field(default_factory=AsanaSettings)
    link: LinkSettings = Field(default_factory=LinkSettings)
    priority: PrioritySettings = Field(default_factory=PrioritySettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    create: CreateSettings = Field(default_factory=CreateSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    # CRM stage name -> board list/section name (for created cards and stage sync).
    stages: dict[str, str] = Field(default_factory=dict)
    # Explicit rep -> member mapping for reps not matched by email, username or name.
    members: dict[str, str] = Field(default_factory=dict)
    state_path: Path = Path(".tasksync/state.sqlite3")
    base_dir: Path = Path()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)

    @field_validator("connector", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the config file's folder."""
        return p if p.is_absolute() else self.base_dir / p


def load_settings(path: Path | str) -> Settings:
    """Read a TOML config file. Errors name the file and the offending key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (run `tasksync demo` for an example)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    return settings_from_mapping(raw, base_dir=path.resolve().parent, source=str(path))


def settings_from_mapping(raw: dict[str, Any], base_dir: Path, source: str = "config") -> Settings:
    try:
        settings = Settings.model_validate({**raw, "base_dir": base_dir})
        settings.secrets = Secrets()
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {where}: {first['msg']}") from None
    return settings
