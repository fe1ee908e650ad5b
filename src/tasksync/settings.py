"""Configuration: one TOML file for what a team decides, the environment for secrets.

Secrets (tokens, keys) are read only from ``TASKSYNC_*`` environment variables, or from a
``.env`` file beside the config file, and never from the TOML file, so a config can be committed
and shared. The ``.env`` file is refused when other users can read it, and an API URL set in it
is used only with the credentials set in that same file (see :func:`read_secrets`). Relative
paths in the TOML file are resolved against the file's own folder.
"""

from __future__ import annotations

import copy
import difflib
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource, SettingsConfigDict

from tasksync.boardref import ref_keys
from tasksync.defaults import STATE_PATH
from tasksync.errors import ConfigError
from tasksync.sections import (
    AsanaSettings,
    CreateSettings,
    CrmFileOptions,
    CrmFiles,
    CrmSettings,
    LinkSettings,
    LocalSettings,
    PolicySettings,
    PrioritySettings,
    SegmentRule,
    ServiceSettings,
    TrelloSettings,
    WebSettings,
    WriteSettings,
    _Section,
)

__all__ = [
    "AsanaSettings",
    "ConfiguredBoard",
    "CreateSettings",
    "CrmFileOptions",
    "CrmFiles",
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
        raise ConfigError(f"{source}: {where}{given}: {_said(first)}") from None


def _said(error: Any) -> str:
    """A validation error in the words of the config file: an unknown key is named as one, with the
    known key it was likely meant to be (pydantic says "Extra inputs are not permitted")."""
    if error["type"] != "extra_forbidden":
        return str(error["msg"]).removeprefix("Value error, ")
    model: Any = Settings
    for part in error["loc"][:-1]:  # the section the key is in
        model = getattr(getattr(model, "model_fields", {}).get(str(part)), "annotation", None)
    near = difflib.get_close_matches(str(error["loc"][-1]), sorted(getattr(model, "model_fields", None) or ()), n=1)
    return (
        "unknown key"
        + (f" (did you mean {near[0]!r}?)" if near else "")
        + "; config/tasksync.example.toml has them all"
    )


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
        keys = ref_keys(wanted)
        return wanted.strip().casefold() == self.name.casefold() or any(keys & ref_keys(r) for r in self.refs)


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
