"""Reading export files as rows of text cells, streamed, with their line numbers.

Two formats, recognised by content rather than by extension (CRMs and users name files
anything): delimited text (CSV, TSV, Excel's "Unicode text", any encoding) and XLSX
workbooks. Both are streamed, so memory stays flat however many rows a file has.

Text encodings are found from a byte-order mark, then by checking whether the whole file is
UTF-8 (most exports are), then with charset-normalizer. Bytes that do not decode are not fatal:
they become lone surrogates (U+DC00 + byte) that the loader reports as the cell's problem.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO, Literal

from tasksync.errors import ConfigError, CrmError

__all__ = [
    "BAD_BYTES",
    "Table",
    "bad_bytes",
    "detect_encoding",
    "open_table",
    "parse_delimiter",
    "sniff_delimiter",
]

#: Lone surrogates standing for undecodable bytes (see :func:`bad_bytes`).
BAD_BYTES = re.compile("[\udc00-\udcff]")
_ERRORS = "tasksync-bytes"


def _keep_bytes(e: UnicodeError) -> tuple[str, int]:
    if not isinstance(e, UnicodeDecodeError):
        raise e
    return "".join(chr(0xDC00 + b) for b in e.object[e.start : e.end]), e.end


codecs.register_error(_ERRORS, _keep_bytes)


def bad_bytes(cell: str) -> bytes:
    """The undecodable bytes hidden in a cell read with the reader's error handler."""
    return bytes(ord(c) - 0xDC00 for c in BAD_BYTES.findall(cell))


@dataclass
class Table:
    """An open export: its headers and an iterator of ``(line number, cells)``.

    ``line`` is the physical line (CSV, the record's first line) or the sheet row (XLSX), as a
    spreadsheet or editor shows it. ``encoding`` and ``delimiter`` say how the file was read
    (``"xlsx"`` and ``""`` for workbooks); ``sheet`` is the worksheet read, if any.
    """

    path: Path
    headers: list[str]
    rows: Iterator[tuple[int, list[str]]]
    encoding: str
    delimiter: str
    format: Literal["csv", "xlsx"] = "csv"
    sheet: str | None = None
    header_line: int = 1
    notes: list[str] = field(default_factory=list)  # how the file was read, for `crm check`
    has_bad_bytes: bool = False  # some bytes did not decode (cells carry them as surrogates)
    #: The last row when the file ends in the middle of it (no line break after it): an export
    #: cut short. ``rows`` does not yield it; it is set once ``rows`` is exhausted.
    cut_row: tuple[int, list[str]] | None = None
    #: CSV files that end with a line break: given how many rows were taken from ``rows``, the
    #: csv reader behind it and the line its last row ended on, for a caller that reads the
    #: remaining rows itself (``rows`` is then left as is); None when it cannot (yet) be done.
    #: Such a caller skips blank rows and turns ``csv.Error`` into :class:`CrmError` as ``rows``
    #: does.
    rest_reader: Callable[[int], tuple[Any, int] | None] | None = None
    sheets: tuple[str, ...] = ()  # a workbook's sheets, in order


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CJK = {"gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "cp950", "cp949", "euc_kr"}
_JAPANESE = {"shift_jis", "cp932", "euc_jp", "iso2022_jp", "shift_jis_2004", "euc_jis_2004", "shift_jisx0213"}
_CJK |= {"johab", "iso2022_kr", *_JAPANESE}
_KANA = re.compile("[\u3041-\u309f\u30a0-\u30ff]")
_LATIN = {"cp1250", "cp1252", "latin_1", "iso8859_1", "iso8859_2", "iso8859_15", "cp1257"}
_LATIN |= {"iso8859_9", "iso8859_13", "cp1254", "mac_roman", "mac_latin2", "cp850", "ascii"}
_CHUNK = 1 << 18


def detect_encoding(fh: BinaryIO) -> tuple[str, str]:
    """The encoding of a text export and how it was found. Reads the file once, in chunks."""
    fh.seek(0)
    head = fh.read(65536)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, "byte-order mark"
    if len(head) >= 4:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > len(odd) * 0.3 and even.count(0) < len(even) * 0.05:
            return "utf-16-le", "NUL bytes every other byte (UTF-16 without byte-order mark)"
        if even.count(0) > len(even) * 0.3 and odd.count(0) < len(odd) * 0.05:
            return "utf-16-be", "NUL bytes every other byte (UTF-16 without byte-order mark)"
    # Most exports are UTF-8: check the whole file cheaply, remembering where it stops being so.
    decoder = codecs.getincrementaldecoder("utf-8")()
    fh.seek(0)
    offset = 0
    bad_at = -1
    while chunk := fh.read(_CHUNK):
        if _ascii_between(chunk, decoder):
            offset += len(chunk)
            continue
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as e:
            bad_at = offset + e.start
            break
        offset += len(chunk)
    else:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            bad_at = max(offset - 4, 0)
    if bad_at < 0:
        return "utf-8", "valid UTF-8"
    fh.seek(max(bad_at - 1024, 0))
    region = fh.read(65536)
    if bad_at >= 1024:  # start on a line boundary, not inside a multi-byte character
        region = region[region.find(b"\n") + 1 :]
    sample = region if bad_at >= len(head) else head
    if _looks_gb(sample):
        return "gb18030", "Chinese GB2312/GBK/GB18030 byte pairs"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    guess = codecs.lookup(best.encoding).name.replace("-", "_") if best else None
    # Japanese text (kana) detected as Shift-JIS/cp932/EUC-JP is read as detected: GB18030
    # would decode its bytes too, into the wrong characters ("コア" -> "僐傾").
    if guess in _JAPANESE and _decodes(sample, guess) and _KANA.search(sample.decode(guess, errors="ignore")):
        return guess, "detected (Japanese kana)"
    # charset-normalizer confuses short Chinese samples with Korean or Japanese; GB18030
    # (a superset of GBK and GB2312) is by far the likelier for a CRM export.
    if (guess is None or guess in _CJK) and _decodes(sample, "gb18030"):
        how = "detected" if guess == "gb18030" else f"detected as {guess or 'unknown'}"
        return "gb18030", f"{how}; read as GB18030"
    # Excel on Western Windows writes cp1252; charset-normalizer often says cp1250.
    if (guess is None or guess in _LATIN) and _decodes(sample, "cp1252"):
        how = "detected" if guess == "cp1252" else f"detected as {guess or 'unknown'}"
        return "cp1252", f"{how}; read as Windows-1252"
    if guess is None:
        raise CrmError('cannot tell the file\'s text encoding; set crm.encoding (e.g. "gb18030", "cp1252", "utf-16")')
    return guess, "detected by charset-normalizer"


def _looks_gb(sample: bytes) -> bool:
    """Whether non-ASCII bytes are nearly all GB2312 hanzi pairs (lead B0-F7, trail A1-FE)
    and the whole sample decodes as GB18030: Chinese text, which charset-normalizer often
    takes for Korean or Latin on short or mostly-ASCII samples."""
    pairs = hanzi = 0
    i, n = 0, len(sample)
    while i < n:
        b = sample[i]
        if b < 0x80:
            i += 1
            continue
        if i + 1 < n:
            pairs += 1
            if 0xB0 <= b <= 0xF7 and 0xA1 <= sample[i + 1] <= 0xFE:
                hanzi += 1
        i += 2
    return pairs >= 2 and hanzi >= 0.8 * pairs and _decodes(sample, "gb18030")


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


_DELIMITER_NAMES = {
    "comma": ",",
    "semicolon": ";",
    "tab": "\t",
    "\\t": "\t",
    "pipe": "|",
    "space": " ",
}
_CANDIDATES = (",", ";", "\t", "|")


def parse_delimiter(text: str) -> str:
    """A configured delimiter: one character, or ``comma``/``semicolon``/``tab``/``pipe``."""
    d = _DELIMITER_NAMES.get(text.casefold(), text)
    if len(d) != 1:
        raise ConfigError(f"crm.delimiter: expected one character or tab/comma/..., got {text!r}")
    return d


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter giving the same, largest number of fields on most sample lines."""
    best, best_score = ",", (-1.0, 0)
    lines = [ln for ln in lines if ln.strip()][:50]
    for d in _CANDIDATES:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=d)]
        except csv.Error:
            continue
        if not counts or max(counts) < 2:
            continue
        widest = max(counts)
        score = (counts.count(widest) / len(counts), widest)
        if score > best_score:
            best, best_score = d, score
    return best


def _find_header(sample: list[list[str]]) -> int:
    """Index of the header row: the first row about as wide as the widest rows, so titles
    and report banners above it (``Opportunities report``, ``商机列表``) are skipped."""
    widths = [sum(1 for c in r if str(c).strip()) for r in sample]
    if not widths:
        return 0
    target = max(2, (max(widths) + 1) // 2)
    for i, w in enumerate(widths):
        if w >= target:
            return i
    return 0


_HEADER_SCAN = 20


@contextmanager
def open_table(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
) -> Iterator[Table]:
    """Open a CSV/TSV/text export or an XLSX workbook, whatever its extension.

    Raises :class:`ConfigError` if it is missing or an option is wrong, :class:`CrmError` if
    it has no header row or is not a readable export.
    """
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise ConfigError(f"{path}: CRM export not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot open: {e.strerror}") from None
    with fh:
        magic = fh.read(8)
        fh.seek(0)
        if magic.startswith(b"PK\x03\x04"):
            with _open_xlsx(path, fh, sheet) as table:
                yield table
            return
        if magic.startswith(b"\xd0\xcf\x11\xe0"):
            raise CrmError(
                f"{path}: an Excel 97-2003 (.xls) workbook; save it as .xlsx or CSV "
                "(File > Save As) and point tasksync at that"
            )
        lowered = fh.read(512).lstrip().lower()
        fh.seek(0)
        if lowered.startswith((b"<html", b"<!doctype html", b"<table")):
            raise CrmError(
                f"{path}: an HTML page (some CRMs save reports as HTML named .xls); export as CSV or XLSX instead"
            )
        with _open_text(path, fh, encoding, delimiter) as table:
            yield table


@contextmanager
def _open_text(path: Path, fh: BinaryIO, encoding: str | None, delimiter: str | None) -> Iterator[Table]:
    notes: list[str] = []
    enc = _text_encoding(path, fh, encoding, notes)
    ends_with_line_break = _ends_with_line_break(fh, enc)
    fh.seek(0)
    text = io.TextIOWrapper(fh, encoding=enc, errors=_ERRORS, newline="")
    sample_text = text.read(65536)
    verified = notes[-1].endswith("(valid UTF-8)")
    has_bad = bool(BAD_BYTES.search(sample_text)) or not (verified or _clean_tail(path, enc))
    sample_lines = sample_text.splitlines(keepends=True)
    if sample_lines and len(sample_text) == 65536:
        sample_lines.pop()  # possibly cut short
    delim, skip = _text_delimiter(sample_lines, delimiter, notes)
    text.seek(0)
    reader = csv.reader(text, delimiter=delim)
    ahead, line = _first_rows(path, reader, skip)
    if not ahead:
        raise CrmError(f"{path}: the file is empty (expected a header row)")
    h = _find_header([r for _, r in ahead])
    header_line, headers = ahead[h]
    if h:
        notes.append(f"header on line {header_line} (lines above it skipped)")
    rest = ahead[h + 1 :]

    def all_rows() -> Iterator[tuple[int, list[str]]]:
        yield from rest
        prev = line
        try:
            for row in reader:
                # Blank lines and delimiter-only lines (",,,,") are not rows.
                if row and (row[0] or "".join(row).strip()):
                    yield prev + 1, row
                prev = reader.line_num
        except csv.Error as e:
            raise CrmError(f"{path}:{prev + 1}: not valid CSV: {e}") from None

    def all_but_a_cut_last_row() -> Iterator[tuple[int, list[str]]]:
        # The file ends without a line break: its last row may be cut mid-line (an export
        # or a copy that stopped short, 60000 read as 600), so it is held back, not read.
        last: tuple[int, list[str]] | None = None
        for item in all_rows():
            if last is not None:
                yield last
            last = item
        table.cut_row = last

    table = Table(
        path,
        [" ".join(h_.split()) for h_ in headers],  # a header cell's line breaks are spaces
        iter(()),
        enc,
        delim,
        "csv",
        None,
        header_line,
        notes,
        has_bad,
    )
    table.rows = all_rows() if ends_with_line_break else all_but_a_cut_last_row()
    if ends_with_line_break:
        # Once ``rest`` is taken, ``rows`` reads one row at a time, so ``line_num`` is the
        # line of the last row it gave.
        table.rest_reader = lambda taken: (reader, reader.line_num) if taken >= len(rest) else None
    yield table


def _text_encoding(path: Path, fh: BinaryIO, encoding: str | None, notes: list[str]) -> str:
    """The text file's encoding: configured (a UTF-8 BOM honoured), else detected; noted."""
    if encoding:
        try:
            enc = codecs.lookup(encoding).name
        except LookupError:
            raise ConfigError(f"crm.encoding: unknown encoding {encoding!r}") from None
        if enc == "utf-8" and fh.read(3) == codecs.BOM_UTF8:
            enc = "utf-8-sig"
        notes.append(f"encoding {enc} (configured)")
        return enc
    try:
        enc, how = detect_encoding(fh)
    except CrmError as e:
        if path.suffix.casefold() in (".xlsx", ".xlsm"):  # named like a workbook, but no zip
            raise CrmError(f"{path}: not an XLSX workbook (not a zip file: damaged, or not one) nor text") from None
        raise CrmError(f"{path}: {e}") from None
    notes.append(f"encoding {enc} ({how})")
    return enc


def _text_delimiter(sample_lines: list[str], delimiter: str | None, notes: list[str]) -> tuple[str, int]:
    """The delimiter (the file's ``sep=`` line, else configured, else sniffed on the sample)
    and how many lines to skip before the rows (1 for a ``sep=`` line); noted."""
    m = re.fullmatch(r"\s*sep=(.)\s*", sample_lines[0]) if sample_lines else None
    if m and not delimiter:
        notes.append(f"delimiter {_show(m[1])} (from the file's sep= line)")
        return m[1], 1
    if delimiter:
        delim = parse_delimiter(delimiter)
        notes.append(f"delimiter {_show(delim)} (configured)")
        return delim, 1 if m else 0
    delim = sniff_delimiter(sample_lines[:60])
    notes.append(f"delimiter {_show(delim)} (sniffed)")
    return delim, 0


def _first_rows(path: Path, reader: Any, skip: int) -> tuple[list[tuple[int, list[str]]], int]:
    """The first non-blank rows (up to where a header is looked for), with their lines, after
    ``skip`` lines; and the line the reader stopped at."""
    line = 0
    ahead: list[tuple[int, list[str]]] = []
    try:
        for _ in range(skip):
            next(reader, None)
            line = reader.line_num
        while len(ahead) < _HEADER_SCAN:
            start = line + 1
            row = next(reader, None)
            if row is None:
                break
            line = reader.line_num
            if row and any(c.strip() for c in row):
                ahead.append((start, row))
    except csv.Error as e:
        raise CrmError(f"{path}:{line + 1}: not valid CSV: {e}") from None
    return ahead, line


def _ends_with_line_break(fh: BinaryIO, enc: str) -> bool:
    """Whether the file's last character is a line break (or the file is empty)."""
    size = fh.seek(0, io.SEEK_END)
    if size == 0:
        return True
    unit = 4 if "32" in enc else 2 if "16" in enc else 1
    fh.seek(max(size - unit, 0))
    tail = fh.read()
    if unit == 1:
        return tail in (b"\n", b"\r")
    return any(tail in (c.encode(f"utf-{unit * 8}-le"), c.encode(f"utf-{unit * 8}-be")) for c in "\n\r")


def _show(delim: str) -> str:
    names = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}
    return names.get(delim, repr(delim))


#: Encodings in which bytes below 0x80 are always ASCII characters, whatever surrounds them.
_ASCII_SUPERSETS = {"utf-8", "utf-8-sig", "ascii", "cp1252", "iso8859-1", "iso8859-15", "gb18030", "gbk"}


def _ascii_between(chunk: bytes, decoder: codecs.IncrementalDecoder) -> bool:
    """Whether a chunk is all ASCII with no character left open before it: it decodes (in an
    ASCII-compatible encoding) without decoding it, many times faster."""
    return chunk.isascii() and not decoder.getstate()[0]


def _clean_tail(path: Path, enc: str) -> bool:
    """Whether the whole file decodes (checked in chunks; most of it was checked already
    for UTF-8, and decoding is fast)."""
    decoder = codecs.getincrementaldecoder(enc)()
    ascii_ok = codecs.lookup(enc).name in _ASCII_SUPERSETS
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                if not (ascii_ok and _ascii_between(chunk, decoder)):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@contextmanager
def _open_xlsx(path: Path, fh: BinaryIO, sheet: str | int | None) -> Iterator[Table]:
    try:
        from openpyxl import load_workbook

        wb = load_workbook(fh, read_only=True, data_only=True)
    except Exception as e:  # a zip that is not a workbook, corrupt XML...
        raise CrmError(f"{path}: not a readable XLSX workbook ({type(e).__name__}: {e})") from None
    try:
        names: list[str] = list(wb.sheetnames)
        if not names:
            raise CrmError(f"{path}: the workbook has no sheets")
        if sheet is None or sheet == "":
            name = names[0]
        elif isinstance(sheet, int) or (str(sheet).isascii() and str(sheet).isdigit()):
            i = int(sheet)
            if not 1 <= i <= len(names):
                raise ConfigError(
                    f"{path}: sheet {i} asked for (crm.sheet) but the workbook has {len(names)}: {', '.join(names)}"
                )
            name = names[i - 1]
        elif sheet in names:
            name = str(sheet)
        else:
            raise ConfigError(f"{path}: no sheet named {sheet!r} (crm.sheet); sheets: {', '.join(names)}")
        ws = wb[name]
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # some exporters write a wrong <dimension>; read every cell
        notes = [f"sheet {name!r}" + (f" of {len(names)}" if len(names) > 1 else "")]
        merges = _vertical_merges(ws)
        it = _xlsx_rows(path, ws, merges)
        ahead: list[tuple[int, list[str]]] = []
        for item in it:
            ahead.append(item)
            if len(ahead) >= _HEADER_SCAN:
                break
        if not ahead:
            raise CrmError(f"{path}: sheet {name!r} is empty (expected a header row)")
        h = _find_header([r for _, r in ahead])
        header_line, headers = ahead[h]
        if h:
            notes.append(f"header on row {header_line} (rows above it skipped)")
        if h + 1 < len(ahead) and header_line in merges.get(ahead[h + 1][0], {}).values():
            # A header of two rows (cells merged down from the first): the second row names
            # the columns under a merged group heading, the first the others.
            below = ahead[h + 1][1]
            headers = [(below[i] if i < len(below) and below[i].strip() else c) for i, c in enumerate(headers)]
            notes.append(f"header on rows {header_line}-{ahead[h + 1][0]} (merged cells)")
            h += 1

        def rows() -> Iterator[tuple[int, list[str]]]:
            yield from ahead[h + 1 :]
            yield from it

        cells = [" ".join(x.split()) for x in headers]  # a header cell's line breaks (Alt+Enter) are spaces
        yield Table(path, cells, rows(), "xlsx", "", "xlsx", name, header_line, notes, sheets=tuple(names))
    finally:
        wb.close()


_MERGE = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Z]+)(\d+):[A-Z]+(\d+)\"")


def _vertical_merges(ws: Any) -> dict[int, dict[int, int]]:
    """Cells merged down over several rows (a report's group column, a two-row header): row
    -> {column index: the row holding the value}. The merges follow the rows in the sheet's
    XML, so its bytes are scanned first (no XML parse)."""
    from openpyxl.utils import column_index_from_string

    below: dict[int, dict[int, int]] = {}
    if not hasattr(ws, "_get_source"):
        return below
    tail = b""
    with ws._get_source() as src:
        while chunk := src.read(1 << 16):
            data = tail + chunk
            for m in _MERGE.finditer(data):
                col, top, bottom = column_index_from_string(m[1].decode()) - 1, int(m[2]), int(m[3])
                for row in range(top + 1, bottom + 1):
                    below.setdefault(row, {})[col] = top
            tail = data[-200:]
    return below


def _xlsx_rows(path: Path, ws: Any, merges: dict[int, dict[int, int]]) -> Iterator[tuple[int, list[str]]]:
    n = 0
    tops = {top for cols in merges.values() for top in cols.values()}
    held: dict[tuple[int, int], object] = {}  # (row, column) -> value of a merged range's top cell
    try:
        for n, row in enumerate(ws.iter_rows(values_only=True), 1):
            values = list(row)
            if n in tops:
                held.update(((n, c), v) for c, v in enumerate(values))
            for col, top in merges.get(n, {}).items():
                values += [None] * (col + 1 - len(values))
                values[col] = held.get((top, col))
            if values and any(v is not None and v != "" for v in values):
                yield n, [_cell_text(v) for v in values]
    except CrmError:
        raise
    except Exception as e:  # corrupt sheet XML, bad shared strings...
        raise CrmError(f"{path}:{n + 1}: cannot read the workbook row ({type(e).__name__}: {e})") from None


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        r = repr(v)
        return r if "e" not in r else f"{v:.10f}".rstrip("0").rstrip(".")
    if isinstance(v, time):
        return v.isoformat()
    return str(v)
