"""Matching an export's headers to fields: the user's mapping, then the presets of known CRMs
and header synonyms (:mod:`tasksync.crm.vendors`).

A file's headers are matched in this order, field by field:

1. the user's ``[crm.columns.<kind>]`` mapping (always wins): a header, a list of headers
   whose cells are joined with a space (``name = ["First Name", "Last Name"]``), or ``""``
   for an optional field the file does not have. One header may feed several configured
   fields. A configured header that is not in the file is a :class:`ConfigError`;
2. the preset chosen by ``crm.preset``, or automatically as the one matching most fields
   (ties broken by the preset's other typical headers, e.g. HubSpot's ``Pipeline``);
3. tasksync's own default headers (``FIELDS``, as written by ``tasksync demo``);
4. common English and Chinese names for the field (``SYNONYMS``).

Steps 2-4 use each header once, except that a key field (id, name) found nowhere else may
share the header of another field (``id = "Full Name"`` also gives the name). Presets and
synonyms may name a pair of headers to join (HubSpot's users export: ``First Name`` and
``Last Name``).

Headers are compared folded (case, width, spaces and punctuation ignored): ``Close Date``,
``CloseDate`` and ``close_date`` are the same header.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tasksync.crm.specs import FIELDS, KEYS, ColumnSpec
from tasksync.crm.values import header_key, header_keys
from tasksync.crm.vendors import PRESETS, SYNONYMS, HeaderName, Preset
from tasksync.errors import ConfigError, CrmError

__all__ = [
    "PRESETS",
    "SYNONYMS",
    "ColumnMapping",
    "ColumnMatch",
    "Preset",
    "match_columns",
    "preset_scores",
]

#: What ``[crm.columns.<kind>]`` may give per field: a header, headers to join, or "" (none).
Configured = str | Sequence[str]


@dataclass(frozen=True)
class ColumnMatch:
    """One field found in a file: its column(s), header(s) and why they were chosen.

    ``indexes`` holds several columns when the field is built from them (their cells joined
    with a space); ``index`` is the first, ``header`` names them all (``First Name + Last Name``).
    """

    field: str
    index: int
    header: str
    how: str  # "configured", "preset <name>", "default header", "synonym"
    indexes: tuple[int, ...] = ()
    shared: bool = False  # the header also feeds another field

    @property
    def columns(self) -> tuple[int, ...]:
        return self.indexes or (self.index,)


@dataclass
class ColumnMapping:
    """The result of matching one file's headers for one record kind."""

    kind: str
    preset: str  # the preset used, or "generic"
    preset_how: str  # "configured" or "best header match (n fields)"
    columns: dict[str, ColumnMatch]
    missing: dict[str, tuple[str, ...]]  # field -> headers tried and not in the file
    unused: list[str]  # headers tasksync does not read
    notes: list[str] = field(default_factory=list)
    #: field -> (header, other field): headers that would fit but already feed another field
    taken: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _show(name: HeaderName) -> str:
    return " + ".join(name) if isinstance(name, tuple) else name


def preset_scores(kind: str, headers: Sequence[str]) -> list[tuple[float, str]]:
    """How well each preset fits the headers, best first: matched fields (required and key
    fields count double), then the preset's other typical headers found, as a tie-break."""
    keys = {k for h in headers for k in header_keys(h)}
    specs = FIELDS[kind]

    def present(n: HeaderName) -> bool:
        return all(header_key(x) in keys for x in n) if isinstance(n, tuple) else header_key(n) in keys

    scores: list[tuple[float, str]] = []
    for p in PRESETS.values():
        cols = p.columns.get(kind, {})
        fields = sum(
            (2 if specs[f].required or specs[f].key else 1)
            for f, names in cols.items()
            if f in specs and any(present(n) for n in names)
        )
        sig = sum(1 for n in p.signature.get(kind, ()) if header_key(n) in keys)
        if fields:
            scores.append((fields + min(sig, 9) / 10, p.name))
    scores.sort(key=lambda s: -s[0])
    return scores


def match_columns(
    kind: str,
    headers: Sequence[str],
    explicit: Mapping[str, Configured] | None = None,
    preset: str = "auto",
    source: str = "",
) -> ColumnMapping:
    """Map ``kind``'s fields to columns of ``headers``; see the module docstring for the
    order. Raises :class:`ConfigError` for an unknown preset or field name, or a configured
    header that is not in the file; :class:`CrmError` if a required field has no column or
    nothing identifies the records (no id, name or email column)."""
    specs = FIELDS[kind]
    explicit = dict(explicit or {})
    unknown = sorted(set(explicit) - set(specs))
    if unknown:
        raise ConfigError(
            f"crm.columns.{kind}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"{kind} fields are {', '.join(specs)}"
        )
    where = f"{source}: " if source else ""
    chosen, how = _choose_preset(kind, headers, preset)
    index: dict[str, int] = {}
    for i, header in enumerate(headers):
        index.setdefault(header_key(header), i)
    for i, header in enumerate(headers):  # 金额（万元）, Amount (USD): also by the name without the unit
        for key in header_keys(header)[1:]:
            index.setdefault(key, i)
    used: dict[int, str] = {}  # column -> the field it feeds
    found = _configured_columns(kind, headers, explicit, index, used, where)
    tried, taken = _columns_by_name(kind, headers, chosen, explicit, index, used, found)
    # A key field found nowhere else shares a header claimed by another field: a reps export
    # whose only identifying column is "Full Name" keys and names reps by it.
    for name in KEYS.get(kind, ()):
        if name not in found and name not in explicit and taken[name]:
            header, other = taken[name][0]
            at = [index[header_key(x)] for x in header.split(" + ")]
            found[name] = ColumnMatch(
                name, at[0], header, f"shared with {other}", tuple(at) if len(at) > 1 else (), True
            )
    in_file = {k for h in headers for k in header_keys(h)}

    def not_in_file(h: str) -> bool:
        return any(header_key(x) not in in_file for x in h.split(" + "))

    missing = {
        f: tuple(h for h in dict.fromkeys(tried[f] or [specs[f].header]) if not_in_file(h))
        for f in specs
        if f not in found
    }
    _check_identified(kind, headers, explicit, found, missing, taken, where)
    used_cols = {i for c in found.values() for i in c.columns}
    unused = [h for i, h in enumerate(headers) if i not in used_cols and h]
    refused = {f: t for f, t in taken.items() if t and f in missing}
    return ColumnMapping(kind, chosen, how, found, missing, unused, [], refused)


def _choose_preset(kind: str, headers: Sequence[str], preset: str) -> tuple[str, str]:
    """The preset to match with (``crm.preset``, or the best-scoring one when ``auto`` and it
    beats tasksync's default headers) and how it was chosen."""
    if preset == "auto":
        in_file = {k for h in headers for k in header_keys(h)}
        scores = preset_scores(kind, headers)
        specs = FIELDS[kind]
        generic = sum((2 if s.required or s.key else 1) for s in specs.values() if header_key(s.header) in in_file)
        if scores and scores[0][0] > generic:
            return scores[0][1], f"best header match, score {scores[0][0]:g}"
        return "generic", "tasksync's default headers"
    if preset == "generic" or preset in PRESETS:
        return preset, "configured"
    raise ConfigError(f"crm.preset: unknown preset {preset!r}; choose auto, generic or one of {', '.join(PRESETS)}")


def _configured_columns(
    kind: str,
    headers: Sequence[str],
    explicit: Mapping[str, Configured],
    index: Mapping[str, int],
    used: dict[int, str],
    where: str,
) -> dict[str, ColumnMatch]:
    """The fields the user mapped (``[crm.columns.<kind>]``), each header checked to be in the
    file; their columns go into ``used``."""
    specs = FIELDS[kind]
    found: dict[str, ColumnMatch] = {}
    for name, configured in explicit.items():
        wanted = [configured] if isinstance(configured, str) else list(configured)
        wanted = [p for p in wanted if p.strip()]
        if not wanted:  # `field = ""`: the user says the file has no such column
            if specs[name].required:
                raise ConfigError(
                    f"crm.columns.{kind}.{name}: {kind} field {name!r} is required and cannot be left empty"
                )
            continue
        at: list[int] = []
        for header in wanted:
            hit = index.get(header_key(header))
            if hit is None:
                close = difflib.get_close_matches(header, headers, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                optional = "" if specs[name].required else f' (or {name} = "" if the file has no such column)'
                raise ConfigError(
                    f"{where}crm.columns.{kind}.{name}: the file has no column {header!r}{hint} "
                    f"Headers are: {', '.join(headers)}. Fix the mapping{optional}."
                )
            at.append(hit)
        shared = any(i in used for i in at)
        found[name] = ColumnMatch(
            name, at[0], " + ".join(headers[i] for i in at), "configured", tuple(at) if len(at) > 1 else (), shared
        )
        for i in at:
            used.setdefault(i, name)
    return found


def _columns_by_name(
    kind: str,
    headers: Sequence[str],
    chosen: str,
    explicit: Mapping[str, Configured],
    index: Mapping[str, int],
    used: dict[int, str],
    found: dict[str, ColumnMatch],
) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, str]]]]:
    """The other fields found by the chosen preset's headers, then the default headers, then
    the synonyms, each header used once; into ``found``. Returns the header names tried per
    field and, per field, the headers present but already feeding another field."""
    specs: Mapping[str, ColumnSpec] = FIELDS[kind]
    preset_cols = PRESETS[chosen].columns.get(kind, {}) if chosen in PRESETS else {}
    stages: list[tuple[str, Mapping[str, tuple[HeaderName, ...]]]] = [
        (f"preset {chosen}", preset_cols),
        ("default header", {f: (s.header,) for f, s in specs.items()}),
        ("synonym", SYNONYMS.get(kind, {})),
    ]
    tried: dict[str, list[str]] = {f: [] for f in specs}
    taken: dict[str, list[tuple[str, str]]] = {f: [] for f in specs}  # headers present but used
    for how_found, names_by_field in stages:
        for name in specs:
            if name in found or name in explicit:
                continue
            for n in names_by_field.get(name, ()):
                tried[name].append(_show(n))
                hits = [index.get(header_key(x)) for x in (n if isinstance(n, tuple) else (n,))]
                cols = [h for h in hits if h is not None]
                if len(cols) < len(hits):
                    continue
                if any(h in used for h in cols):
                    taken[name].append((_show(n), used[next(h for h in cols if h in used)]))
                    continue
                found[name] = ColumnMatch(
                    name, cols[0], " + ".join(headers[h] for h in cols), how_found, tuple(cols) if len(cols) > 1 else ()
                )
                for col in cols:
                    used[col] = name
                break
    return tried, taken


def _check_identified(
    kind: str,
    headers: Sequence[str],
    explicit: Mapping[str, Configured],
    found: Mapping[str, ColumnMatch],
    missing: Mapping[str, tuple[str, ...]],
    taken: Mapping[str, list[tuple[str, str]]],
    where: str,
) -> None:
    """:class:`CrmError` when a required field has no column or no column keys the records,
    naming the headers tried and those already used for another field."""
    specs = FIELDS[kind]

    def absent(f: str) -> str:
        names = missing[f]
        text = f"none of {', '.join(repr(h) for h in names[:8])} is a header" if names else "no header"
        if taken[f]:
            text += "; " + ", ".join(f"{h!r} is used for {o!r}" for h, o in taken[f][:3])
        return text

    required_missing = [f for f in missing if (specs[f].required or specs[f].expected) and f not in explicit]
    if required_missing:
        f = required_missing[0]
        none = "" if specs[f].required else f', or {f} = "" if the export has none'
        raise CrmError(
            f"{where}missing column for {kind} field {f!r}: {absent(f)}; headers are: "
            f"{', '.join(headers)} "
            f'(map it under [crm.columns.{kind}] {f} = "<header>"{none})'
        )
    keys = KEYS.get(kind, ())
    if keys and not any(k in found for k in keys):
        tried_keys = "; ".join(f"{k}: {absent(k)}" for k in keys)
        raise CrmError(
            f"{where}no column identifies the {kind}: {kind} are keyed by their "
            f"{' or '.join(keys)}, and none was found ({tried_keys}); headers are: "
            f'{", ".join(headers)} (map one under [crm.columns.{kind}], e.g. {keys[0]} = "<header>")'
        )
