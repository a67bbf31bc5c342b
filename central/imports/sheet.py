"""A planner's spreadsheet as rows of cells: CSV or XLSX bytes in, a ``Sheet`` out (no files, no network).

Why its own step: the two formats differ only in how cells are stored, and a planner's file comes
from Excel, WPS or an ERP export in whatever form they produce. So this module knows the formats'
quirks and nothing about orders:

* the format is recognised from the content (an XLSX file is a ZIP archive: ``PK\\x03\\x04``), not
  from a file name a browser or ``curl`` may drop;
* CSV: UTF-8 with or without Excel's byte-order mark, else GB18030 (what Chinese Excel writes when
  "CSV" is chosen); the delimiter is ``,``, ``;`` or a tab, whichever the header line uses;
* XLSX: the sheet named ``orders`` (or ``工单``) if there is one, else the first; formulas give their
  last computed values; a date cell formatted without a time of day is a ``date`` (a date-only due
  time), any other date cell a naive ``datetime`` (plant time);
* row numbers are the spreadsheet's (the header is row 1), so an error points at the row the planner
  sees; empty rows are skipped.

Errors are ``SheetError`` with a message saying what to do.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
MAX_COLUMNS = 64
MAX_CELL = 4000
SHEET_NAMES = ("orders", "工单", "工單")

Cell = str | int | float | date | datetime | None
"""A cell's value: text (stripped), a number, a date (date-only cell), a naive datetime, or empty."""


class SheetError(ValueError):
    """The file cannot be read as a spreadsheet; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # the spreadsheet's row number (header = 1)
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Sheet:
    header: tuple[str, ...]
    rows: tuple[Row, ...]
    kind: str  # "csv" or "xlsx"


def read_sheet(data: bytes) -> Sheet:
    """The header and non-empty rows of a CSV or XLSX file's content."""
    if not data.strip():
        raise SheetError("the file is empty: the first row must name the columns (see docs/api.md, 'Import')")
    if len(data) > MAX_BYTES:
        raise SheetError(f"the file has {len(data):,} bytes; at most {MAX_BYTES:,}: split the plan into several files")
    if data[:4] == b"PK\x03\x04":
        return _xlsx(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SheetError("this is an old Excel .xls file: save it as .xlsx (Excel workbook) or CSV UTF-8")
    return _csv(data)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise SheetError("the CSV file is neither UTF-8 nor GB18030 text: save it as 'CSV UTF-8'") from None


def _csv(data: bytes) -> Sheet:
    text = _text(data)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[Row] = []
    header: tuple[str, ...] | None = None
    try:
        for number, raw in enumerate(reader, start=1):
            cells = _bounded([c.strip() or None for c in raw], number)
            if header is None:
                header = _header(cells)
                continue
            if any(c is not None for c in cells):
                rows.append(Row(number, tuple(cells)))
                _count(rows)
    except csv.Error as exc:
        raise SheetError(f"the CSV file cannot be read near row {reader.line_num}: {exc}") from None
    if header is None:
        raise SheetError("the file has no header row naming the columns")
    return Sheet(header, tuple(rows), "csv")


def _xlsx(data: bytes) -> Sheet:
    import openpyxl  # imported here: only imports need it, and it takes a while to load
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SheetError(f"the file looks like XLSX but cannot be opened ({exc}): save it again from Excel") from None
    try:
        names = {n.strip().lower(): n for n in book.sheetnames}
        chosen = next((names[n] for n in SHEET_NAMES if n in names), book.sheetnames[0])
        ws = book[chosen]
        rows: list[Row] = []
        header: tuple[str, ...] | None = None
        for number, raw in enumerate(ws.iter_rows(), start=1):
            cells = _bounded([_xlsx_cell(c) for c in raw], number)
            if header is None:
                if any(c is not None for c in cells):
                    header = _header(cells)
                    first_row = number
                continue
            if any(c is not None for c in cells):
                rows.append(Row(number, tuple(cells)))
                _count(rows)
    finally:
        book.close()
    if header is None:
        raise SheetError(f"sheet {chosen!r} is empty: the first row must name the columns")
    if first_row != 1:
        rows = [r for r in rows if r.number > first_row]
    return Sheet(header, tuple(rows), "xlsx")


def _xlsx_cell(cell: Any) -> Cell:
    value = getattr(cell, "value", None)
    if value is None:
        return None
    if isinstance(value, datetime):
        fmt = str(getattr(cell, "number_format", "") or "").lower()
        date_only = value.time() == time(0) and not any(t in fmt for t in ("h", "s", "am/pm"))
        return value.date() if date_only else value
    if isinstance(value, date):
        return value
    if isinstance(value, time):
        raise SheetError(f"cell {getattr(cell, 'coordinate', '?')} holds only a time of day: give a date and time")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    return text or None


def _bounded(cells: list[Cell], number: int) -> list[Cell]:
    while cells and cells[-1] is None:
        cells.pop()
    if len(cells) > MAX_COLUMNS:
        raise SheetError(f"row {number} has {len(cells)} columns; at most {MAX_COLUMNS}")
    for c in cells:
        if isinstance(c, str) and len(c) > MAX_CELL:
            raise SheetError(f"row {number} has a cell of {len(c)} characters; at most {MAX_CELL}")
    return cells


def _count(rows: list[Row]) -> None:
    if len(rows) > MAX_ROWS:
        raise SheetError(f"more than {MAX_ROWS:,} rows: split the plan into several files")


def _header(cells: list[Cell]) -> tuple[str, ...]:
    return tuple("" if c is None else str(c).strip() for c in cells)
