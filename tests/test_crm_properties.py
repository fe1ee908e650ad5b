"""Property tests: no input makes the CRM reader crash; every row is used or named."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.crm import open_table, read_export
from tasksync.crm.values import (
    parse_amount,
    parse_bool,
    parse_date,
    parse_int,
    parse_list,
)
from tasksync.errors import ConfigError, CrmError
from tasksync.settings import CrmSettings

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROBLEM = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<column>[^:]*): \S")

raw_files = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=400).map(lambda b: b"PK\x03\x04" + b),
    st.binary(max_size=400).map(lambda b: b"\xef\xbb\xbf" + b),
    st.binary(max_size=400).map(lambda b: b"\xff\xfe" + b),
    st.binary(max_size=400).map(lambda b: b"Deal ID,Deal Name,Stage\n" + b),
    st.lists(st.sampled_from([b",", b";", b"\t", b'"', b"\n", b"\r", b"a", b"1", b"\xe9", b"\x00"])).map(
        lambda parts: b"Deal ID,Deal Name,Stage,Amount\n" + b"".join(parts)
    ),
)


def _file(data: bytes, name: str = "export.csv") -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tasksync-prop-"))
    path = folder / name
    path.write_bytes(data)
    return path


@FAST
@given(raw_files)
def test_readers_never_crash_on_arbitrary_bytes(data: bytes) -> None:
    path = _file(data)
    try:
        with open_table(path) as t:
            assert isinstance(t.headers, list)
            last = 0
            for line, cells in t.rows:
                assert line > last and all(isinstance(c, str) for c in cells)
                last = line
    except (CrmError, ConfigError) as e:
        assert str(e).startswith(str(path)), e


@FAST
@given(raw_files)
def test_loading_arbitrary_bytes_parses_or_names_the_failing_row(data: bytes) -> None:
    path = _file(data)
    try:
        rows, report = read_export(path, "deals", CrmSettings(max_bad_rows=1.0))
    except (CrmError, ConfigError) as e:
        assert str(e).startswith(str(path)), e
        for p in getattr(e, "problems", []):
            assert PROBLEM.match(p) and p.startswith(f"{path}:"), p
        return
    if report.rejected and not report.rows:  # a header and no records: named, nothing read
        assert report.rejected.startswith(str(path)) and "no records" in report.rejected and not rows
        return
    assert report.ok
    assert len(rows) == report.used
    assert report.used + report.bad + report.skipped == report.rows
    for p in report.problems:
        m = PROBLEM.match(p)
        assert m and m["path"] == str(path), p
    bad_lines = {int(PROBLEM.match(p)["line"]) for p in report.problems}  # type: ignore[index]
    assert len(bad_lines) >= report.bad


cell = st.text(max_size=12)
row = st.tuples(cell, cell, cell, cell, cell)


@FAST
@given(
    st.lists(row, max_size=25),
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16", "cp1252"]),
    st.sampled_from([",", ";", "\t"]),
)
def test_every_row_is_either_used_or_named_in_a_problem(
    rows: list[tuple[str, str, str, str, str]], encoding: str, delimiter: str
) -> None:
    header = ["Deal ID", "Deal Name", "Stage", "Amount", "Close Date"]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    try:
        data = buf.getvalue().encode(encoding)
    except UnicodeEncodeError:
        return  # not representable in this encoding: not a file anyone could have
    path = _file(data)
    try:
        got, report = read_export(path, "deals", CrmSettings(encoding=encoding, delimiter=delimiter, max_bad_rows=1.0))
    except (CrmError, ConfigError) as e:
        # Only a file whose header row cannot be found or read may fail whole.
        assert str(e).startswith(str(path)), e
        return
    with open_table(path, encoding=encoding, delimiter=delimiter) as t:
        data_lines = [line for line, _ in t.rows]
    used = {line for line, _ in got}
    named = {int(m["line"]) for p in report.problems if (m := PROBLEM.match(p))}
    unaccounted = [ln for ln in data_lines if ln not in used and ln not in named]
    assert len(unaccounted) == report.skipped + report.footers, (unaccounted, report.problems)


@FAST
@given(st.text(max_size=40))
def test_value_parsers_only_raise_value_errors_that_name_the_value(text: str) -> None:
    for parse in (parse_date, parse_amount, parse_int, parse_bool):
        try:
            parse(text)  # type: ignore[operator]
        except ValueError as e:
            assert "expected" in str(e) and "found" in str(e)
            assert repr(text) in str(e) or repr(text.strip()) in str(e)
    assert all(p.strip() for p in parse_list(text))
