"""The reading loop of one CRM export, generated per file.

Rows are the largest cost on files with 100,000s of them, so the loader does not interpret a
column plan per cell: :func:`compile_reader` writes the loop for one file as straight-line
Python (every cell of a row typed and checked, the row classified open/won/lost, keyed, its
references tallied and its record built or its values yielded) with the fields in local
variables, and compiles it. Only field names (checked identifiers) and numbers go into the
generated source; headers, paths and parsers are passed in its globals (``env``).
"""

from __future__ import annotations

import csv
import dataclasses
import keyword
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tasksync.crm.readers import BAD_BYTES, bad_bytes
from tasksync.crm.specs import RECORDS
from tasksync.crm.values import GIVEN_NAME_HEADERS, header_key, join_cells
from tasksync.errors import CrmError

__all__ = ["AMOUNT_PREFIX", "AMOUNT_PREFIX_FORM", "CACHE_SIZE", "Shape", "Step", "compile_reader", "identifier"]

CACHE_SIZE = 20_000  # distinct values remembered per column
# field, column indexes, header, parser (None: text), required, soft (error keeps the row), cache
Step = tuple[str, tuple[int, ...], str, Callable[[str], Any] | None, bool, bool, dict[str, Any] | None]
# What may come before an amount's digits on the fast path: a sign, a currency code, a symbol.
AMOUNT_PREFIX = "-ABCDEFGHIJKLMNOPQRSTUVWXYZ $€£¥"
AMOUNT_PREFIX_FORM = re.compile(r"-?(?:[A-Z]{3} ?)?[$€£¥]?-?")
# A cell of dashes alone is empty: Chinese CRMs export "--" for no value, accounting formats
# "-" or "¥ -" for none. (Its last character is checked first: most cells end otherwise.)
_DASHES = "-‐‑–—―－"
_BLANK = re.compile(rf"(?:[$€£¥]\s*)?[{_DASHES}]+").fullmatch
# The lines that note the first problem of a row (so that a footer's problems can be dropped).
_MARK = ["if mark < 0:", "    mark = len(problems)"]


@dataclass(frozen=True)
class Shape:
    """What the generated reader of one file must do besides typing its cells."""

    kind: str
    key_field: str | None  # the field keying the records, if any
    key_header: str
    id_header: str  # the id column's header ("" without one)
    width: int  # cells a row needs (shorter rows are padded with empty cells)
    footers: bool  # whether a row that cannot be read may be a report footer
    bad_bytes_in: str | None  # the encoding, when some bytes did not decode
    has_owner: bool  # owners are checked against the reps
    check_accounts: bool  # accounts are checked against the accounts export
    records: bool  # build records (``add``) rather than yield dicts
    amount_prefixes: dict[str, str] = field(default_factory=dict)  # amount field -> usual prefix
    timestamped: set[str] = field(default_factory=set)  # date fields with times in the look-ahead


def identifier(name: str) -> str:
    """A field name, checked before it goes into generated source code."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"CRM field name {name!r} is not a Python identifier: cannot generate the reader for it")
    return name


def compile_reader(
    shape: Shape, plan: list[Step], kind_of: list[str], env: dict[str, Any]
) -> tuple[Callable[[Iterator[tuple[int, list[str]]]], Any], Callable[[Any, int], Any]]:
    """The reading loop of one file as two generated functions: ``read(rows)`` over
    ``(line, cells)`` pairs and ``read_csv(reader, line)`` over the rest of a CSV file (see
    ``Table.rest_reader``). Each returns ``(rows, bad, used, skipped, footers, owner refs,
    account refs)``; problems are appended as ``file:line:column: ...``, in the order of the
    cells, then the key. ``plan`` has one step per field and ``kind_of`` each step's type.
    """
    _helpers(shape, [step[2] for step in plan], env)
    mapped = {identifier(step[0]) for step in plan}
    body: list[str] = ["ok = True", "mark = -1", f"if len(cells) < {shape.width}:"]
    body += [f"    cells = cells + [''] * ({shape.width} - len(cells))"]
    for k, step in enumerate(plan):
        body += _emit_cell(k, step, kind_of[k], shape, env)
    body += _emit_bad_row(shape)
    have = set(mapped)
    body += _emit_outcome(shape.kind, mapped, have)
    body += _emit_key(shape, mapped, have, env)
    refs, tally = _emit_refs(shape, mapped)
    body += refs
    body += _emit_record(shape.kind, have, env) if shape.records else _emit_values(shape.kind, mapped, have)
    return _compiled(shape.kind, body, tally, env)


def _helpers(shape: Shape, headers: list[str], env: dict[str, Any]) -> None:
    """The functions and tables the generated code calls, put into its globals."""
    problems: list[str] = env["problems"]
    path: str = env["path"]
    bad_in = shape.bad_bytes_in

    def problem(line: int, k: int, message: object) -> None:
        problems.append(f"{path}:{line}:{headers[k]}: {message}")

    def undecodable(line: int, k: int, cell: str) -> None:
        problem(line, k, f"expected text in {bad_in}, found bytes that are not {bad_in}: {bad_bytes(cell)!r}")

    prefixes: dict[str, bool] = {}  # amount prefix -> whether it is a sign, code or symbol

    def prefix_ok(sign: str) -> bool:
        ok = AMOUNT_PREFIX_FORM.fullmatch(sign) is not None
        if len(prefixes) < 1000:
            prefixes[sign] = ok
        return ok

    env.update(
        problem=problem,
        undecodable=undecodable,
        prefix_ok=prefix_ok,
        PREFIX=prefixes,
        SIZE=CACHE_SIZE,
        BAD=BAD_BYTES.search,
        DASHES=frozenset(_DASHES),
        BLANK=_BLANK,
    )


def _no_fast_path(parse: Callable[[str], Any]) -> bool:
    """Whether an amount column's parser scales (its header's ``万``, ``K``) or converts
    (``crm.currency``): such a column has no fast path."""
    keywords: dict[str, Any] = getattr(parse, "keywords", {})
    return bool(keywords.get("scale") or keywords.get("base"))


def _emit_cell(k: int, step: Step, kind: str, shape: Shape, env: dict[str, Any]) -> list[str]:
    """Generated lines reading field ``k`` of a row into ``f_<name>``: fetched, stripped,
    looked up in its cache, typed, checked for undecodable bytes and for being required."""
    name, cols, _header, parse, required, soft, cache = step
    f = f"f_{name}"
    env[f"parse_{k}"], env[f"cache_{k}"] = parse, cache
    fail = [*_MARK, f"problem(line, {k}, e)", f"{f} = None"] + ([] if soft else ["ok = False"])
    typed: list[str] = []
    if parse is None:
        pass
    elif kind == "amount" and getattr(parse, "keywords", {}).get("decimal") != "," and not _no_fast_path(parse):
        typed = _emit_amount(k, f, shape.amount_prefixes.get(name), fail, env)
    else:
        typed = ["try:", f"    {f} = parse_{k}({f})", "except ValueError as e:", *("    " + x for x in fail)]
        if cache is not None:
            typed += ["else:", f"    if len(cache_{k}) < SIZE:", f"        cache_{k}[raw] = {f}"]
    if parse is None and cache is not None:
        typed = [f"if len(cache_{k}) < SIZE:", f"    cache_{k}[raw] = {f}"]
    if shape.bad_bytes_in is not None:  # undecodable bytes: the row cannot be read
        checked = [f"if BAD({f}):", *("    " + x for x in _MARK), f"    undecodable(line, {k}, {f})", "    ok = False"]
        typed = checked + (["else:", *("    " + x for x in typed)] if typed else [])
    if not typed:
        typed = ["pass"]
    empty = [f"{f} = None"]
    if required:
        empty += [*_MARK, f"problem(line, {k}, 'required value is empty')", "ok = False"]
    if len(cols) == 1:
        fetch = [f"raw = cells[{cols[0]}]"]
    else:  # a field built from several columns: their non-empty cells joined (see join_cells)
        parts = "".join(f"cells[{c}].strip(), " for c in cols)
        given_first = header_key(_header.split(" + ")[0]) in GIVEN_NAME_HEADERS
        env["join_cells"] = join_cells
        fetch = [f"raw = join_cells(({parts}), {given_first})"]
    if cache is not None and kind == "date" and name in shape.timestamped:
        # 2024-01-05 10:42 and 2024-01-05T10:42:00Z are cached under their date part.
        fetch += ["if len(raw) > 10 and raw[10] in ' T' and raw[4] == '-' and raw[7] == '-':", "    raw = raw[:10]"]
    lines = [f"{f} = raw.strip()"]
    if kind != "bool":  # a yes/no column's "-" is a no (parse_bool)
        lines += [f"if {f}[-1:] in DASHES and BLANK({f}):", f"    {f} = ''"]  # ('' is not in DASHES)
    lines += [f"if {f}:", *("    " + x for x in typed), "else:", *("    " + x for x in empty)]
    if cache is not None:
        lines = [f"{f} = cache_{k}.get(raw)", f"if {f} is None:", *("    " + x for x in lines)]
    return fetch + lines


def _emit_amount(k: int, f: str, prefix: str | None, fail: list[str], env: dict[str, Any]) -> list[str]:
    """Generated lines typing an amount: 1234.5, $12,345.67 and USD 12,345.67 without a call (a
    sign, currency code or symbol, checked once per distinct prefix, then digits with grouping
    commas and one decimal point, read as parse_amount reads them); anything else through it."""
    typed: list[str] = []
    if prefix is not None:  # the column's usual prefix ("USD ", "$", ""), then digits
        env[f"prefix_{k}"] = prefix
        typed = [
            f"if {f}.startswith(prefix_{k}) and {f}[{len(prefix)}:{len(prefix) + 1}].isdecimal() and "
            f"(plain := {f}[{len(prefix)}:].replace(',', '')).replace('.', '', 1).isdecimal():",
            f"    {f} = float(plain)",
            "else:",
        ]
    typed += [
        f"digits = {f}.lstrip({AMOUNT_PREFIX!r})",
        f"sign = {f}[: len({f}) - len(digits)]",
        "plain = digits.replace(',', '')",
        "fast = PREFIX.get(sign)",
        "if fast is None:",
        "    fast = prefix_ok(sign)",
        "if fast and digits[:1].isdecimal() and plain.replace('.', '', 1).isdecimal():",
        f"    {f} = -float(plain) if '-' in sign else float(plain)",
        "else:",
        "    try:",
        f"        {f} = parse_{k}({f})",
        "    except ValueError as e:",
        *("        " + x for x in fail),
    ]
    if prefix is not None:
        typed = typed[:3] + ["    " + x for x in typed[3:]]
    return typed


def _emit_bad_row(shape: Shape) -> list[str]:
    """Generated lines counting a row with an unreadable cell (or dropping a report footer)."""
    body = ["if not ok:"]
    if shape.footers:  # a report's footer or total line is not a row (its problems go)
        body += ["    if is_footer(cells):", "        del problems[mark:]"]
        body += ["        total -= 1", "        footers += 1"]
        body += ["    else:", "        bad += 1"]
    else:
        body += ["    bad += 1"]
    return [*body, "    continue"]


def _emit_outcome(kind: str, mapped: set[str], have: set[str]) -> list[str]:
    """Generated lines classifying a deal by its stage (and status): open deals only among open
    deals, won or lost ones only in the history (which gets ``won``)."""
    body: list[str] = []
    if kind == "deals":
        if "status" in mapped:
            body += ["outcome = (stage_of(f_status) or stages(f_status)) if f_status is not None else 'open'"]
            body += ["if outcome == 'open':", "    outcome = stage_of(f_stage) or stages(f_stage)"]
        else:
            body += ["outcome = stage_of(f_stage) or stages(f_stage)"]
        body += ["if outcome != 'open':", "    skipped += 1", "    continue"]
    elif kind == "history":
        body += ["outcome = stage_of(f_stage) or stages(f_stage)", "if outcome == 'open':"]
        body += ["    open_stages[f_stage] += 1", "    skipped += 1", "    continue", "f_won = outcome == 'won'"]
        have.add("won")
    return body


def _duplicate(record: str, what: str, counter: str, indent: str = "") -> list[str]:
    """Generated lines reporting a row whose key an earlier line has (the first is kept)."""
    lines = [
        "    problems.append(",
        f"        f'{{path}}:{{line}}:{{key_header}}: duplicate {record} {what}: line '",
        "        f'{first} has it too; this row is not read (the first is kept)'",
        "    )",
        f"    {counter} += 1",
        "    continue",
    ]
    return [indent + x for x in lines]


def _emit_key(shape: Shape, mapped: set[str], have: set[str], env: dict[str, Any]) -> list[str]:
    """Generated lines keying a row (``f_id``) and filling its name: by the id column, else by
    a name (folded; deals: made unique with a number), each key checked against earlier rows."""
    kind, key_field = shape.kind, shape.key_field
    record = {"reps": "rep", "accounts": "account", "deals": "deal", "history": "closed deal"}[kind]

    def val(name: str) -> str:
        return f"f_{name}" if name in have else "None"

    body: list[str] = []
    if key_field is None:
        if kind != "history":
            return body
        env["key_header"] = shape.id_header
        if "id" in mapped:  # closed deals' ids, when exported, are unique like open deals'
            body += ["if f_id is None:", "    f_id = f'{file_name}:{line}'", "else:", "    first = seen.get(f_id)"]
            body += ["    if first is not None:", *_duplicate(record, "id {f_id!r}", "bad", "    ")]
            body += ["    seen[f_id] = line"]
        else:
            body += ["f_id = f'{file_name}:{line}'"]
        have.add("id")
        return body
    env["key_header"] = shape.key_header
    name_from_parts = kind == "deals" and "name" not in mapped
    if name_from_parts:
        body += [f"f_name = deal_name({val('account_id')}, {val('product')}, {val('id')})"]
        have.add("name")
    natural = "f_id" if key_field == "id" else "f_name" if key_field == "account_id" else f"f_{key_field}"
    if shape.footers and kind in ("reps", "accounts"):  # a footer in the key column reads as a record
        body += [f"if footer_text({natural}) and alone(cells):", "    total -= 1", "    footers += 1"]
        body += ["    continue"]
    if key_field == "id":
        body += ["key = f_id"]
    else:
        body += [f"natural = {natural}", "key = natural" if kind == "deals" else "key = normalise(natural)"]
        body += ["f_id = natural"]
    body += ["first = seen.get(key)", "if first is not None:"]
    if kind == "deals" and key_field != "id":
        body += ["    n = 2", "    while f'{natural} ({n})' in seen:", "        n += 1"]
        body += ["    f_id = key = f'{natural} ({n})'"]
    elif key_field == "id":  # an id must be unique: the row counts as unreadable
        body += _duplicate(record, "id {f_id!r}", "bad")
    else:  # two records under one name: references cannot tell them apart
        body += [
            "    problems.append(",
            f"        f'{{path}}:{{line}}:{{key_header}}: duplicate {record} {key_field} {{f_{key_field}!r}} '",
            f"        f'(the {kind}\\' key: no id column): line {{first}} has it too; this row is left out '",
            "        '(the first is kept)'",
            "    )",
            "    skipped += 1",
            "    continue",
        ]
    body += ["seen[key] = line"]
    have.add("id")
    if not name_from_parts:
        if kind == "deals":
            fill = f"deal_name({val('account_id')}, {val('product')}, f_id)"
        else:
            fill = "f_email or f_id" if "email" in mapped else "f_id"
        body += ["if f_name is None:", f"    f_name = {fill}"] if "name" in mapped else [f"f_name = {fill}"]
        have.add("name")
    return body


def _emit_refs(shape: Shape, mapped: set[str]) -> tuple[list[str], list[str]]:
    """Generated lines tallying a row's owner and account that match no rep or account, and
    the closing lines counting the rows that name one (all used rows but those naming none)."""
    body: list[str] = []
    tally: list[str] = []
    if shape.has_owner and "owner" in mapped:
        body += [
            "if f_owner is None:",  # rows naming an owner are counted as the others
            "    no_owner += 1",
            "elif f_owner.__class__ is Unknown:",
            "    unknown_owners[f_owner] += 1",
            "    if f_owner not in first_owner_line:",
            "        first_owner_line[f_owner] = line",
            "    f_owner = None",
        ]
        tally.append("owner_refs = used - no_owner")
    if shape.check_accounts and "account_id" in mapped:
        body += [
            "if f_account_id is None:",
            "    no_account += 1",
            "elif f_account_id not in account_ids:",
            "    unknown_accounts[f_account_id] += 1",
            "    if f_account_id not in first_account_line:",
            "        first_account_line[f_account_id] = line",
        ]
        tally.append("account_refs = used - no_account")
    return body, tally


def _compiled(
    kind: str, body: list[str], tally: list[str], env: dict[str, Any]
) -> tuple[Callable[[Iterator[tuple[int, list[str]]]], Any], Callable[[Any, int], Any]]:
    """``read`` and ``read_csv`` around the per-row ``body``, compiled in ``env``."""
    counts = "total, bad, skipped, footers, owner_refs, account_refs, no_owner, no_account"
    start = f"    {counts.replace(', ', ' = ')} = 0"
    end = [
        "    used = total - bad - skipped  # every other row became a record",
        *("    " + x for x in tally),
        "    return total, bad, used, skipped, footers, owner_refs, account_refs",
    ]
    src = ["def read(rows):", start, "    for line, cells in rows:", "        total += 1"]
    src += [*("        " + x for x in body), *end]
    # The same for the rest of a CSV file, straight from its csv reader: lines counted and
    # blank rows skipped here as Table.rows does, without a generator between.
    src += ["def read_csv(reader, prev):", start, "    try:", "        for cells in reader:"]
    src += ["            line = prev + 1", "            prev = reader.line_num"]
    src += ["            if not cells or not (cells[0] or ''.join(cells).strip()):", "                continue"]
    src += ["            total += 1", *("            " + x for x in body)]
    src += ["    except csv_Error as e:", "        raise CrmError(f'{path}:{prev + 1}: not valid CSV: {e}') from None"]
    src += end
    env.update(csv_Error=csv.Error, CrmError=CrmError)
    code = compile("\n".join(src), f"<tasksync {kind} reader>", "exec")
    exec(code, env)
    # Taken out of their own globals: no reference cycle keeping the file's caches and seen
    # keys alive after them (the loader reads with the cyclic collector paused).
    read: Callable[[Iterator[tuple[int, list[str]]]], Any] = env.pop("read")
    read_csv: Callable[[Any, int], Any] = env.pop("read_csv")
    return read, read_csv


def _emit_values(kind: str, mapped: set[str], have: set[str]) -> list[str]:
    """Generated lines yielding a row's values: the fields it has, as a dict."""
    left_out = {"deals": {"status"}, "history": {"stage"}}.get(kind, set())
    out = ["values = {}"]
    for name in sorted(have - left_out, key=lambda n: (n not in mapped, n)):
        out += [f"if f_{name} is not None:", f"    values[{name!r}] = f_{name}"]
    return [*out, "yield line, values"]


def _emit_record(kind: str, have: set[str], env: dict[str, Any]) -> list[str]:
    """Generated lines building a row's record and handing it to ``add``: the frozen
    dataclass's fields set through their slots, without ``__init__``'s per-field
    ``object.__setattr__`` (a large share of the time on 100,000s of closed deals)."""
    cls = RECORDS[kind]
    env["new"], env["cls"] = object.__new__, cls
    out = ["o = new(cls)"]
    for fld in dataclasses.fields(cls):
        name = identifier(fld.name)
        env[f"set_{name}"] = cls.__dict__[name].__set__
        default = fld.default
        if default is dataclasses.MISSING:
            if name not in have:
                raise CrmError(f"{kind}: no column gives the {name} of a {cls.__name__} record")
            expr = f"f_{name}"
        elif name not in have:
            env[f"default_{name}"] = default
            expr = f"default_{name}"
        elif kind == "reps" and name == "role":  # roles are words matched case-blind
            expr = "(f_role.casefold() or None) if f_role is not None else None"
        elif default is None:
            expr = f"f_{name}"
        else:
            env[f"default_{name}"] = default
            expr = f"f_{name} if f_{name} is not None else default_{name}"
        out.append(f"set_{name}(o, {expr})")
    return [*out, "add(o)"]
