"""Reading export files whatever their format, encoding, delimiter or extension."""

from __future__ import annotations

import codecs
import csv
import io
import tracemalloc
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from tasksync.crm import open_table
from tasksync.errors import ConfigError, CrmError

ROWS = [
    ["客户名称", "负责人", "金额", "Société"],
    ["华为技术有限公司", "张三", "¥1,234", "Müller & Söhne"],
    ["阿里巴巴", "李四", "¥99", "Crème brûlée SA"],
]


def _text(rows: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(rows)
    return buf.getvalue()


def _read(path: Path, **kw: object) -> tuple[list[str], list[tuple[int, list[str]]], str, str]:
    with open_table(path, **kw) as t:  # type: ignore[arg-type]
        return t.headers, list(t.rows), t.encoding, t.delimiter


@pytest.mark.parametrize(
    ("encoding", "raw_encoding", "delimiter", "rows"),
    [
        ("utf-8-sig", "utf-8-sig", ",", ROWS),
        ("utf-8", "utf-8", ";", ROWS),
        ("gb18030", "gb18030", ",", [r[:3] for r in ROWS] * 3),
        ("utf-16", "utf-16", "\t", ROWS),  # Excel "Unicode text"
        ("utf-16-le", "utf-16-le", "\t", ROWS),  # the same without a byte-order mark
        ("cp1252", "cp1252", ";", [["Name", "Company", "Amount"], ["José", "Müller", "1.234,50 €"]]),
    ],
)
def test_encodings_and_delimiters_are_detected(
    tmp_path: Path, encoding: str, raw_encoding: str, delimiter: str, rows: list[list[str]]
) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes(_text(rows, delimiter).encode(raw_encoding))
    headers, data, enc, delim = _read(path)
    assert codecs.lookup(enc).name == codecs.lookup(encoding).name
    assert delim == delimiter
    assert headers == rows[0]
    assert [cells for _, cells in data] == rows[1:]
    assert [line for line, _ in data] == list(range(2, len(rows) + 1))


def test_gbk_file_longer_than_the_detection_sample(tmp_path: Path) -> None:
    # ASCII for the first 100 KB, Chinese afterwards: the whole file is checked, not a sample.
    head = "id,name\n" + "".join(f"{i},customer{i}\n" for i in range(8000))
    tail = "".join(f"{i},客户{i}号\n" for i in range(8000, 8100))
    path = tmp_path / "accounts.csv"
    path.write_bytes((head + tail).encode("gbk"))
    _, data, enc, _ = _read(path)
    assert enc == "gb18030"
    assert data[-1] == (8101, ["8099", "客户8099号"])


def test_configured_encoding_and_delimiter_win(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes("a|b;c\n1|2;3\n".encode("latin-1"))
    headers, data, enc, delim = _read(path, encoding="latin-1", delimiter="pipe")
    assert (headers, data[0][1], enc, delim) == (["a", "b;c"], ["1", "2;3"], "iso8859-1", "|")
    with pytest.raises(ConfigError, match="unknown encoding"):
        _read(path, encoding="klingon")
    with pytest.raises(ConfigError, match="one character"):
        _read(path, delimiter="::")


def test_excel_sep_line_and_title_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_text("sep=;\nOpportunities report;;\n\nName;Stage;Amount\nA;Won;5\n", "utf-8")
    headers, data, _, delim = _read(path)
    assert delim == ";"
    assert headers == ["Name", "Stage", "Amount"]
    assert data == [(5, ["A", "Won", "5"])]


def test_quoted_multiline_cells_keep_their_first_line_number(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_text('id,note\n1,"two\nlines"\n2,ok\n', "utf-8")
    _, data, _, _ = _read(path)
    assert data == [(2, ["1", "two\nlines"]), (4, ["2", "ok"])]


def test_undecodable_bytes_are_kept_for_the_loader_to_report(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes("name,city\nA,Zürich\n".encode() + b"B,Z\xfcrich\xff\xfe\n")
    with open_table(path, encoding="utf-8") as t:
        rows = list(t.rows)
        assert t.has_bad_bytes
    assert rows[1][0] == 3
    assert "\udcfc" in rows[1][1][1]


def test_xlsx_first_sheet_date_cells_serials_and_numbers(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Deals"
    ws.append(["Pipeline report"])
    ws.append(["Deal Name", "Close Date", "Serial", "Amount", "Won"])
    ws.append(["A", datetime(2024, 1, 5), 45296, 1234.5, True])
    ws.append([])
    ws.append(["B", date(2024, 2, 1), 45323.0, 10.0, False])
    other = wb.create_sheet("Reps")
    other.append(["Rep ID", "Name"])
    other.append(["R1", "Mei"])
    path = tmp_path / "export.bin"  # any extension: recognised by content
    wb.save(path)
    with open_table(path) as t:
        assert (t.format, t.sheet, t.header_line) == ("xlsx", "Deals", 2)
        assert t.headers == ["Deal Name", "Close Date", "Serial", "Amount", "Won"]
        assert list(t.rows) == [
            (3, ["A", "2024-01-05", "45296", "1234.5", "true"]),
            (5, ["B", "2024-02-01", "45323", "10", "false"]),
        ]
    for sheet in ("Reps", 2, "2"):
        with open_table(path, sheet=sheet) as t:
            assert t.headers == ["Rep ID", "Name"]
            assert list(t.rows) == [(2, ["R1", "Mei"])]
    with pytest.raises(ConfigError, match=r"no sheet named 'Nope'.*Deals, Reps"):
        _read(path, sheet="Nope")
    with pytest.raises(ConfigError, match=r"sheet 3 .* has 2"):
        _read(path, sheet=3)


def test_xlsx_written_in_streaming_mode(tmp_path: Path) -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Export")
    ws.append(["商机名称", "金额"])
    for i in range(500):
        ws.append([f"项目{i}", i * 1.5])
    path = tmp_path / "deals.xlsx"
    wb.save(path)
    headers, data, enc, delim = _read(path)
    assert headers == ["商机名称", "金额"] and (enc, delim) == ("xlsx", "")
    assert len(data) == 500 and data[-1] == (501, ["项目499", "748.5"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "Excel 97-2003"),
        (b"<html><table><tr><td>x</td></tr></table></html>", "HTML"),
        (b"PK\x03\x04garbage", "not a readable XLSX"),
    ],
)
def test_unusable_files_fail_with_a_clear_crm_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "deals.xls"
    path.write_bytes(content)
    with pytest.raises(CrmError, match=message):
        _read(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        _read(tmp_path / "nope.csv")


def _peak_streaming(path: Path, rows: int) -> int:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,name,amount\n")
        for i in range(rows):
            fh.write(f"{i},name {i},{i * 3}.50\n")
    tracemalloc.start()
    with open_table(path) as t:
        n = sum(1 for _ in t.rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == rows
    return peak


def test_rows_are_streamed_not_loaded(tmp_path: Path) -> None:
    small = _peak_streaming(tmp_path / "small.csv", 40_000)  # ~0.8 MB
    big = _peak_streaming(tmp_path / "big.csv", 320_000)  # ~7 MB
    assert big < small * 1.5 + 100_000, (small, big)


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
@pytest.mark.parametrize(
    ("tail", "bad"),
    [
        (b"\xc3\xa9\n", False),  # a valid character after long ASCII stretches
        (b"\xe9\n", True),  # a Windows-1252 byte deep in a UTF-8 file
        (b"\xc3", True),  # a character left open at the end of a chunk, all ASCII after it
    ],
)
def test_bytes_that_do_not_decode_are_found_after_long_ascii_stretches(
    tmp_path: Path, bom: bytes, tail: bytes, bad: bool
) -> None:
    from tasksync.crm.readers import _CHUNK

    head = bom + b"Name,Note\n" + b"a,b\n" * (_CHUNK // 4)
    head += b"c," + b"x" * (2 * _CHUNK - len(head) - 2 - len(tail)) + tail  # ends the second chunk
    assert len(head) == 2 * _CHUNK
    path = tmp_path / "reps.csv"
    path.write_bytes(head + b"\nd,e\n" * 70_000)
    with open_table(path) as t:
        if bom:
            assert (t.encoding, t.has_bad_bytes) == ("utf-8-sig", bad)
        else:  # not UTF-8 after all: the encoding is detected again
            assert (t.encoding == "utf-8") is not bad
