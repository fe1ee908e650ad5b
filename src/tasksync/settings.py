"""Configuration: one TOML file for what a team decides, the environment for secrets.

Secrets (tokens, keys) are read only from ``TASKSYNC_*`` environment variables, or from a
``.env`` file beside the config file, and never from the TOML file, so a config can be committed
and shared. The ``.env`` file is refused when other users can read it, and an API URL set in it
is used only with the credentials set in that same file (see :func:`read_secrets`). Relative
paths in the TOML file are resolved against the file's own folder.
"""

from __future__ import annotations

import copy
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource, SettingsConfigDict

from tasksync.defaults import SERVICE_INTERVAL, STATE_PATH
from tasksync.errors import ConfigError

__all__ = [
    "AsanaSettings",
    "ConfiguredBoard",
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
    "WriteSettings",
    "find_board",
    "load_settings",
    "read_secrets",
    "secrets_by_prefix",
    "select_board",
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
    options: dict[str, CrmFileOptions] = Field(default_factory=dict)  # per kind overrides


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


ENV_PREFIX = "TASKSYNC_"


class Secrets(BaseSettings):
    """Secrets and endpoints, from the environment (``TASKSYNC_*``) or a ``.env`` file beside the
    config file (see :func:`read_secrets`); never from the TOML file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    trello_key: SecretStr | None = None
    trello_token: SecretStr | None = None
    trello_api_url: str = "https://api.trello.com/1"
    asana_token: SecretStr | None = None
    asana_api_url: str = "https://app.asana.com/api/1.0"
    trello_secret: SecretStr | None = None  # app secret: verifies Trello webhook signatures
    asana_webhook_secret: SecretStr | None = None  # verifies Asana webhook signatures


# An API URL and the credentials it would receive: set both in one place (see read_secrets).
_URL_CREDENTIALS = {
    "trello_api_url": ("trello_key", "trello_token"),
    "asana_api_url": ("asana_token",),
}
# Keys that hold secrets: refused in the TOML file wherever they appear.
_SECRET_KEYS = frozenset(
    {"secrets", "token", "key", "api_key", "apikey", "secret", "password", "access_token", "webhook_secret"}
    | {name for name in Secrets.model_fields if not name.endswith("_api_url")}
)
# Tables whose keys are data (rep names, CRM headers, stage names), not settings.
_DATA_TABLES = frozenset({"members", "stages", "crm"})


def read_secrets(config_dir: Path | None) -> Secrets:
    """Secrets from the environment, then from ``config_dir/.env`` for what the environment lacks.

    The ``.env`` file is read only beside the config file (never from the working folder) and
    refused when other users may read or write it. An API URL set in ``.env`` is honoured only
    when the credentials it would receive are not taken from the environment: a ``.env`` file
    cannot send a token it did not set to another host (the URL and the token must come from
    the same source).
    """
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    dotenv = config_dir / ".env" if config_dir is not None else None
    if dotenv is not None and dotenv.is_file():
        mode = dotenv.stat().st_mode
        if mode & (stat.S_IROTH | stat.S_IWOTH):
            raise ConfigError(
                f"{dotenv}: holds secrets but other users can read or write it (mode "
                f"{stat.S_IMODE(mode):04o}); run `chmod 600 {dotenv}`"
            )
        try:
            from_file = DotEnvSettingsSource(Secrets, env_file=dotenv)()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{dotenv}: cannot read: {e}") from None
        for name, value in from_file.items():
            if value:
                values[name], source[name] = value, str(dotenv)
    for name, value in EnvSettingsSource(Secrets)().items():
        if value:
            values[name], source[name] = value, "the environment"
    for url, credentials in _URL_CREDENTIALS.items():
        if source.get(url, "the environment") == "the environment":
            continue
        foreign = [c for c in credentials if source.get(c) == "the environment"]
        if foreign:
            names = " and ".join(ENV_PREFIX + c.upper() for c in foreign)
            raise ConfigError(
                f"{source[url]}: {ENV_PREFIX + url.upper()}={values[url]} would send {names} from the "
                "environment to that host; set the URL where the credentials are set (both in the "
                "environment, or both in this file)"
            )
    return Secrets.model_validate(values)


class Settings(_Section):
    """The whole configuration of one board or project."""

    connector: str = "local"  # a `tasksync.connectors` entry point: local, trello, asana or a plugin
    local: LocalSettings = Field(default_factory=LocalSettings)
    trello: TrelloSettings = Field(default_factory=TrelloSettings)
    asana: AsanaSettings = Field(default_factory=AsanaSettings)
    # Plugged-in connectors' own tables ([connectors.<name>]), validated by the connector's model.
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    link: LinkSettings = Field(default_factory=LinkSettings)
    priority: PrioritySettings = Field(default_factory=PrioritySettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    create: CreateSettings = Field(default_factory=CreateSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    write: WriteSettings = Field(default_factory=WriteSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    # CRM stage name -> board list/section name (for created cards and stage sync).
    stages: dict[str, str] = Field(default_factory=dict)
    # Explicit rep -> member mapping for reps not matched by email, username or name.
    members: dict[str, str] = Field(default_factory=dict)
    state_path: Path = Path(STATE_PATH)
    base_dir: Path = Path()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)
    _boards: list[ConfiguredBoard] = PrivateAttr(default_factory=list)  # the [[boards]] entries

    @field_validator("connector", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the config file's folder."""
        return p if p.is_absolute() else self.base_dir / p

    def boards(self) -> list[ConfiguredBoard]:
        """Every board or project this config names, each with its own complete settings.

        The ``[[boards]]`` entries when the file has them; otherwise the implicit ones of a
        single-board config: one per ``[trello] boards`` id (each its own entry), or the one
        ``[asana] project``, ``[local] path`` or plugged-in connector."""
        if self._boards:
            return list(self._boards)
        if self.connector == "trello" and len(self.trello.boards) > 1:
            out = []
            for ref in self.trello.boards:
                one = self.model_copy(update={"trello": self.trello.model_copy(update={"boards": [ref]})}, deep=True)
                one.secrets = self.secrets
                out.append(ConfiguredBoard(ref, one, _refs_of(one)))
            return out
        return [ConfiguredBoard(_default_name(self), self, _refs_of(self))]


def load_settings(path: Path | str, state_path: Path | str | None = None) -> Settings:
    """Read a TOML config file. Errors name the file and the offending key.

    ``state_path`` (the CLI's ``--state``, or ``$TASKSYNC_STATE``) overrides the file's
    ``state_path``, e.g. to keep the state store in a writable folder when the config sits in a
    read-only one (the shipped systemd unit).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (run `tasksync demo` for an example)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a TOML text file (byte {e.start} is not UTF-8)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    settings = settings_from_mapping(raw, base_dir=path.resolve().parent, source=str(path))
    if state_path:
        settings.state_path = Path(state_path).resolve()
        for board in settings._boards:
            board.settings.state_path = settings.state_path
    return settings


def _secret_keys(raw: Mapping[str, Any], prefix: str = "", top: bool = True) -> list[str]:
    """Dotted names of keys in the TOML that would hold secrets (``[[boards]]`` entries too)."""
    found: list[str] = []
    for key, value in raw.items():
        if key in _SECRET_KEYS:
            found.append(prefix + key)
        elif isinstance(value, Mapping) and not (top and key in _DATA_TABLES):
            found.extend(_secret_keys(value, f"{prefix}{key}.", top=False))
        elif top and key == "boards" and isinstance(value, list):
            for i, entry in enumerate(value):
                if isinstance(entry, Mapping):
                    found.extend(_secret_keys(entry, f"{prefix}boards[{i}].", top=True))
    return found


def _validated(raw: dict[str, Any], base_dir: Path, source: str) -> Settings:
    try:
        return Settings.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        given = f" = {first['input']!r}" if first["loc"] and not isinstance(first["input"], dict) else ""
        raise ConfigError(f"{source}: {where}{given}: {first['msg']}") from None


def settings_from_mapping(raw: dict[str, Any], base_dir: Path, source: str = "config") -> Settings:
    """Validate a parsed config; secrets are read from the environment and ``base_dir/.env``.

    With ``[[boards]]`` entries, the top-level tables are the shared defaults and each entry's
    complete settings are validated too (errors name the board and the key): see
    :meth:`Settings.boards`."""
    secret = _secret_keys(raw)
    if secret:
        raise ConfigError(
            f"{source}: {secret[0]}: secrets never go in the config file; set them in the environment "
            f"(TASKSYNC_TRELLO_KEY, TASKSYNC_TRELLO_TOKEN, TASKSYNC_ASANA_TOKEN...) or in a .env file "
            "beside the config (mode 600)"
        )
    raw = dict(raw)
    entries = raw.pop("boards", None)
    settings = _validated(raw, base_dir, source)
    if entries is not None:
        settings._boards = _configured_boards(raw, entries, base_dir, source)
    secrets = read_secrets(base_dir)
    settings.secrets = secrets
    for board in settings._boards:
        board.settings.secrets = secrets_by_prefix(board.secrets_prefix) if board.secrets_prefix else secrets
    return settings


def secrets_by_prefix(prefix: str) -> Secrets:
    """A board's own secrets (``secrets_prefix``, in ``[[boards]]`` and ``cluster.toml``):
    ``<prefix>TRELLO_KEY``, ``<prefix>TRELLO_TOKEN``, ``<prefix>TRELLO_API_URL``... from the
    environment only, URLs and credentials alike; nothing falls back to the shared ``TASKSYNC_*``
    values (a token never goes to another board's URL)."""
    own = {k: v for k, v in EnvSettingsSource(Secrets, env_prefix=prefix)().items() if v}
    # every field given (unset: its default), or BaseSettings would add the TASKSYNC_* environment
    return Secrets.model_validate({name: own.get(name, f.default) for name, f in Secrets.model_fields.items()})


# ------------------------------------------------------------------ many boards in one config
# A [[boards]] entry: its name, where the board is (shorthands), and any of these sections of the
# top-level config, which it overrides key by key (tables are merged, lists and values replaced).
_BOARD_SECTIONS = frozenset(
    {"connector", "local", "trello", "asana", "connectors", "link", "priority", "policy", "create", "crm"}
    | {"service", "write", "stages", "members"}
)
_SHARED_ONLY = frozenset({"state_path", "web", "base_dir", "boards"})  # one per process, never per board


@dataclass(frozen=True)
class ConfiguredBoard:
    """One board or project of a config: the name ``--board`` and ``tasksync status`` use, its
    complete settings (shared defaults with its own overrides), and the references that also
    select it (its board id, short link or URL, its project gid or URL, its file)."""

    name: str
    settings: Settings
    refs: tuple[str, ...] = ()
    explicit: bool = False  # a [[boards]] entry (not a single-board config's implicit one)
    secrets_prefix: str = ""  # its own secrets: <prefix>TRELLO_TOKEN... from the environment

    def read_secrets(self) -> Secrets:
        """Its secrets as they are now: ``<prefix>*`` from the environment with a ``secrets_prefix``,
        else the environment and the ``.env`` beside the config (as when the config was loaded)."""
        return secrets_by_prefix(self.secrets_prefix) if self.secrets_prefix else read_secrets(self.settings.base_dir)

    def matches(self, wanted: str) -> bool:
        keys = _ref_keys(wanted)
        return wanted.strip().casefold() == self.name.casefold() or any(keys & _ref_keys(r) for r in self.refs)


def _ref_keys(text: str) -> set[str]:
    """What a board reference is known by: the text, and the id in a Trello or Asana URL."""
    text = text.strip()
    keys = {text.casefold()}
    for pattern in (r"trello\.com/b/([A-Za-z0-9]+)", r"/project/(\d+)", r"app\.asana\.com/\d+/\d+/(\d+)"):
        m = re.search(pattern, text)
        if m:
            keys.add(m.group(1).casefold())
    return keys


def _refs_of(settings: Settings) -> tuple[str, ...]:
    if settings.connector == "trello":
        return tuple(settings.trello.boards[:1])
    if settings.connector == "asana":
        return (settings.asana.project,) if settings.asana.project else ()
    if settings.connector == "local":
        return (str(settings.local.path), settings.local.path.name)
    return ()


def _default_name(settings: Settings) -> str:
    return next(iter(_refs_of(settings)), "") or settings.connector


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on it: tables merged key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _board_overrides(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``[[boards]]`` entry as overrides of the top-level tables (its shorthands expanded)."""
    over: dict[str, Any] = {}
    places = [k for k in ("trello", "asana_project", "local") if isinstance(entry.get(k), str)]
    if len(places) > 1:
        raise ConfigError(f"{where}: names both {places[0]} and {places[1]}; one board per entry")
    for key, value in entry.items():
        if key in ("name", "secrets_prefix"):
            continue
        if key in _SHARED_ONLY:
            raise ConfigError(
                f"{where}: {key}: set once at the top level (one process, one state store for every board)"
            )
        if key == "trello" and isinstance(value, str):
            over = _merge(over, {"connector": "trello", "trello": {"boards": [value]}})
        elif key == "asana_project":
            over = _merge(over, {"connector": "asana", "asana": {"project": value}})
        elif key == "local" and isinstance(value, str):
            over = _merge(over, {"connector": "local", "local": {"path": value}})
        elif key == "crm" and isinstance(value, str):
            over = _merge(over, {"crm": {"folder": value}})
        elif key in _BOARD_SECTIONS:
            over = _merge(over, {key: value})
        else:
            known = ", ".join(sorted(_BOARD_SECTIONS | {"name", "asana_project", "secrets_prefix"}))
            raise ConfigError(f"{where}: {key}: unknown key (a board entry takes {known})")
    return over


def _configured_boards(raw: dict[str, Any], entries: Any, base_dir: Path, source: str) -> list[ConfiguredBoard]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{source}: boards: expected [[boards]] tables (one per board)")
    out: list[ConfiguredBoard] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        name = entry.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(f"{source}: boards[{i}]: name: expected a non-empty text, found {name!r}")
        where = f"{source}: boards[{name or i}]"
        prefix = entry.get("secrets_prefix", "")
        if not isinstance(prefix, str) or (prefix and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*_", prefix)):
            raise ConfigError(f'{where}: secrets_prefix: expected a prefix such as "TASKSYNC_EMEA_", found {prefix!r}')
        settings = _validated(_merge(raw, _board_overrides(entry, where)), base_dir, where)
        name = str(name or _default_name(settings))
        board = ConfiguredBoard(name, settings, _refs_of(settings), explicit=True, secrets_prefix=prefix.upper())
        if board.name.casefold() in seen:
            raise ConfigError(f"{where}: the name {board.name!r} is also boards[{seen[board.name.casefold()]}]'s")
        seen[board.name.casefold()] = i
        out.append(board)
    return out


def find_board(settings: Settings, wanted: str | None, source: str = "the config") -> ConfiguredBoard:
    """The one board a command works on: the one ``wanted`` names (by name, id, short link or
    URL), or the only one. With several and none named, or none matching, a
    :class:`ConfigError` lists the names there are."""
    boards = settings.boards()
    names = ", ".join(b.name for b in boards)
    if wanted is None:
        if len(boards) == 1:
            return boards[0]
        raise ConfigError(f"{source} names {len(boards)} boards ({names}); choose one with --board NAME")
    for board in boards:
        if board.matches(wanted):
            return board
    raise ConfigError(f"--board {wanted!r}: {source} names no such board; its boards are: {names}")


def select_board(settings: Settings, wanted: str | None, source: str = "the config") -> Settings:
    """The settings of the board :func:`find_board` finds."""
    return find_board(settings, wanted, source).settings
