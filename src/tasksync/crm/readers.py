"""Reading export files as rows of text cells, streamed, with their line numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tasksync.errors import ConfigError, CrmError

__all__ = ["Table", "open_table"]


@dataclass
class Table:
    """An open export: its headers and an iterator of ``(line number, cells)``."""

    path: Path
    headers: list[str]
    rows: Iterator[tuple[int, list[str]]]
    encoding: str
    delimiter: str


def _sniff_delimiter(sample: str) -> str:
    first = sample.splitlines()[0] if sample else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@contextmanager
def open_table(
    path: Path, *, encoding: str | None = None, delimiter: str | None = None
) -> Iterator[Table]:
    """Open a CSV/TSV export. Raises :class:`ConfigError` if missing, :class:`CrmError` if
    it has no header row or cannot be decoded."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise ConfigError(f"{path}: CRM export not found") from None
    with fh:
        enc = encoding or "utf-8-sig"
        text = io.TextIOWrapper(fh, encoding=enc, newline="")
        try:
            sample = text.read(8192)
        except UnicodeDecodeError as e:
            raise CrmError(
                f"{path}: cannot decode as {enc}: {e.reason} at byte {e.start}"
            ) from None
        delim = delimiter or _sniff_delimiter(sample)
        text.seek(0)
        reader = csv.reader(text, delimiter=delim)
        try:
            headers = next(reader)
        except StopIteration:
            raise CrmError(f"{path}: the file is empty (expected a header row)") from None
        headers = [h.strip() for h in headers]

        def rows() -> Iterator[tuple[int, list[str]]]:
            try:
                for row in reader:
                    if row and any(c.strip() for c in row):
                        yield reader.line_num, row
            except UnicodeDecodeError as e:
                raise CrmError(
                    f"{path}:{reader.line_num + 1}: cannot decode as {enc}: {e.reason}"
                ) from None
            except csv.Error as e:
                raise CrmError(f"{path}:{reader.line_num}: {e}") from None

        yield Table(path, headers, rows(), enc, delim)
