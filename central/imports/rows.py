"""Rows of the import template -> ``WorkOrderIn`` values, or every row-level error at once (pure).

All or nothing: the file is read to the end and every problem is listed (row number, column, what to
fix), because a planner fixing one error per upload gives up after the third. Nothing is applied
unless there is no error at all (the caller's job: ``upsert.plan_import``).

Time (issue 13, "Precisions"): a time without an offset is in the plant's time zone; a date alone
means the end of that date's last shift on the calendar of the order's last operation's machine
(``PlantTime.day_end``), which is when the parts must be done for the truck that evening.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, Protocol

from pydantic import ValidationError

from central.imports.sheet import Cell, Sheet
from central.imports.template import BY_KEY, COLUMNS, Column, key
from central.progress.orders import OperationIn, WorkOrderIn

MAX_ERRORS = 200
_OP_FIELDS = {"seq": "seq", "name": "operation", "machine": "machine", "work_centre": "work_centre",
              "quantity": "op_quantity", "ideal_cycle_time": "cycle_time", "setup_time": "setup_time",
              "job": "job", "transfer_quantity": "transfer_quantity", "count_source": "count_source"}
_ORDER_FIELDS = {"id": "order", "product": "product", "customer": "customer", "quantity": "quantity",
                 "due": "due", "priority": "priority", "notes": "notes", "operations": "seq"}
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "秒": 1.0, "m": 60.0, "min": 60.0, "分": 60.0, "分钟": 60.0, "分鐘": 60.0,
          "h": 3600.0, "hr": 3600.0, "小时": 3600.0, "小時": 3600.0}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([a-z\u4e00-\u9fff]*)$")
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(.*)$")
_ORDER_LEVEL = {c.name: c.order_level for c in COLUMNS}
_INT = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$|^[+-]?\d+$")


class PlantTime(Protocol):
    """What the import needs to know about the plant's time (``catalog_time.CatalogTime``)."""

    @property
    def tz(self) -> tzinfo: ...

    def day_end(self, day: date, machine: str | None, work_centre: str | None) -> float | None:
        """End of ``day``'s last shift on that machine's (or work centre's) calendar; None: no shift."""
        ...


@dataclass(frozen=True, slots=True)
class RowError:
    row: int | None  # the spreadsheet's row number (header = 1); None: the file as a whole
    column: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        return f"{where}{', ' + self.column if self.column else ''}: {self.message}"


class ImportRejectedError(ValueError):
    """The file has errors; nothing was imported. ``errors`` lists them in row order."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors[:MAX_ERRORS]
        more = f" (first {MAX_ERRORS} shown)" if len(errors) > MAX_ERRORS else ""
        super().__init__(f"{len(errors)} error(s){more}, nothing imported: " + "; ".join(map(str, self.errors[:5])))


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    order: WorkOrderIn
    row: int  # the first row of the order
    op_rows: Mapping[int, int] = field(default_factory=dict)  # seq -> row
    columns: frozenset[str] | None = None  # the file's columns (None: all); an update keeps what it lacks


class _BadCellError(ValueError):
    pass


# --------------------------------------------------------------------------- cells
def _text(cell: Cell) -> str | None:
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell)


def _int(cell: Cell) -> int | None:
    if cell is None:
        return None
    if isinstance(cell, bool | date):
        raise _BadCellError(f"{cell!r} is not a whole number")
    if isinstance(cell, float):
        if not cell.is_integer():
            raise _BadCellError(f"{cell:g} is not a whole number")
        return int(cell)
    if isinstance(cell, int):
        return cell
    text = cell.replace(" ", "")
    if _INT.match(text):
        return int(text.replace(",", ""))
    try:
        value = float(text)
    except ValueError:
        raise _BadCellError(f"{cell!r} is not a number") from None
    if not value.is_integer():
        raise _BadCellError(f"{cell!r} is not a whole number")
    return int(value)


def _seconds(cell: Cell) -> float | None:
    """Seconds, or a number with a unit: 45s, 1.5min, 0.1h, 15分钟."""
    if cell is None:
        return None
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return float(cell)
    match = _DURATION.match(str(cell).strip().lower())
    if match is None or match.group(2) not in _UNITS:
        raise _BadCellError(f"{cell!r} is not a duration: give seconds (45) or a number with s, min or h (1.5min)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _when(cell: Cell, tz: tzinfo) -> float | date | None:
    """Unix seconds, or a ``date`` to resolve to its last shift's end."""
    if cell is None:
        return None
    if isinstance(cell, datetime):
        return (cell if cell.tzinfo else cell.replace(tzinfo=tz)).timestamp()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, int | float):
        if cell >= 100_000_000:
            return float(cell)
        raise _BadCellError(f"{cell!r} is not a time: give a date and time, e.g. 2026-12-04 16:00")
    text = cell.strip()
    try:
        return float(text) if float(text) >= 100_000_000 else _unparsable(cell)
    except ValueError:
        pass
    match = _DATE.match(text)
    if match is None:
        _unparsable(cell)
    year, month, day, rest = match.groups()  # type: ignore[union-attr]
    try:
        if not rest.strip():
            return date(int(year), int(month), int(day))
        rest = re.sub(r"^([ T])(\d):", r"\g<1>0\2:", rest)
        parsed = datetime.fromisoformat(f"{int(year):04d}-{int(month):02d}-{int(day):02d}{rest}")
    except ValueError:
        _unparsable(cell)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).timestamp()


def _unparsable(cell: Cell) -> Any:
    raise _BadCellError(f"{cell!r} is not a time: give 2026-12-04 16:00 (plant time), 2026-12-04T16:00+08:00 or a "
               "date 2026-12-04 (the end of its last shift)")


_CONVERT = {"quantity": _int, "priority": _int, "seq": _int, "op_quantity": _int, "transfer_quantity": _int,
            "cycle_time": _seconds, "setup_time": _seconds}


# --------------------------------------------------------------------------- rows -> orders
def _columns(header: tuple[str, ...], errors: list[RowError]) -> dict[int, Column]:
    found: dict[int, Column] = {}
    seen: dict[str, int] = {}
    names = ", ".join(c.name for c in COLUMNS)
    for i, title in enumerate(header):
        if not title:
            continue
        col = BY_KEY.get(key(title))
        if col is None:
            errors.append(RowError(1, title, f"unknown column {title!r}; the template's columns are: {names}"))
        elif col.name in seen:
            errors.append(RowError(1, title, f"column {col.name!r} appears twice (columns {seen[col.name] + 1} "
                                             f"and {i + 1})"))
        else:
            found[i] = col
            seen[col.name] = i
    for col in COLUMNS:
        if col.required and col.name not in seen:
            errors.append(RowError(1, col.name, f"the column {col.name!r} is missing ({col.help})"))
    if "machine" not in seen and "work_centre" not in seen:
        errors.append(RowError(1, "machine", "give a 'machine' column (or 'work_centre') to say where each "
                                             "operation runs"))
    return found


@dataclass(slots=True)
class _Draft:
    row: int
    fields: dict[str, tuple[Any, int]] = field(default_factory=dict)  # column -> (value, row it came from)
    broken: bool = False  # a cell of the order could not be read (already reported)
    ops: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def parse_orders(sheet: Sheet, plant: PlantTime) -> list[ImportedOrder]:
    """The orders of ``sheet`` in the order of their first rows; ``ImportRejectedError`` with every error."""
    errors: list[RowError] = []
    columns = _columns(sheet.header, errors)
    if errors:
        raise ImportRejectedError(errors)
    drafts: dict[str, _Draft] = {}
    for row in sheet.rows:
        values: dict[str, Any] = {}
        for i, cell in enumerate(row.cells):
            col = columns.get(i)
            if col is None:
                if cell is not None:
                    errors.append(RowError(row.number, f"column {i + 1}", "a value in a column without a name: "
                                                                          "name the column or clear the cell"))
                continue
            try:
                if col.name == "due":
                    values[col.name] = _when(cell, plant.tz)
                else:
                    values[col.name] = _CONVERT.get(col.name, _text)(cell)
            except _BadCellError as exc:
                errors.append(RowError(row.number, col.name, str(exc)))
                values[col.name] = _BROKEN
        order_id = values.get("order")
        if order_id is None:
            errors.append(RowError(row.number, "order", "every row needs its order id (rows are grouped by it)"))
            continue
        if order_id is _BROKEN:
            continue
        draft = drafts.setdefault(order_id, _Draft(row.number))
        draft.broken = draft.broken or any(v is _BROKEN for v in values.values())
        for col in COLUMNS:
            value = values.get(col.name)
            if not col.order_level or value is None or value is _BROKEN:
                continue
            known = draft.fields.get(col.name)
            if known is None:
                draft.fields[col.name] = (value, row.number)
            elif known[0] != value:
                errors.append(RowError(row.number, col.name, f"order {order_id} has {_show(known[0])} on row "
                                                             f"{known[1]} and {_show(value)} here: give one value "
                                                             "(or leave the cell empty)"))
        draft.ops.append((row.number, {c: v for c, v in values.items() if not _ORDER_LEVEL[c]}))
    present = frozenset(col.name for col in columns.values())
    out = [_build(order_id, draft, plant, errors, present) for order_id, draft in drafts.items()]
    if errors:
        raise ImportRejectedError(sorted(errors, key=lambda e: (e.row or 0, e.column or "")))
    return [o for o in out if o is not None]


_BROKEN = object()


def _show(value: Any) -> str:
    if isinstance(value, float) and value > 100_000_000:
        return datetime.fromtimestamp(value).astimezone().isoformat(timespec="minutes")
    return repr(str(value)) if not isinstance(value, int | float) else f"{value:g}"


def _op(row: int, values: dict[str, Any], order_qty: Any, errors: list[RowError]) -> OperationIn | None:
    if any(v is _BROKEN for v in values.values()):
        return None
    body: dict[str, Any] = {
        "seq": values.get("seq"), "name": values.get("operation"), "machine": values.get("machine"),
        "work_centre": values.get("work_centre"),
        "quantity": values.get("op_quantity") if values.get("op_quantity") is not None else order_qty,
        "ideal_cycle_time": values.get("cycle_time"),
    }
    for name in ("setup_time", "job", "transfer_quantity", "count_source"):
        if values.get(name) is not None:
            body[name] = values[name]
    try:
        return OperationIn.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            column = _OP_FIELDS.get(str(loc[0]), "machine") if loc else "machine"
            if column == "op_quantity" and values.get("op_quantity") is None:
                column = "quantity"
            errors.append(RowError(row, column, _message(err, column, values.get(column))))
        return None


def _message(err: Any, column: str, given: Any) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if given is None and err["type"] in ("missing", "string_type", "int_type", "float_type"):
        return "is empty: " + next((c.help for c in COLUMNS if c.name == column), "give a value")
    return f"{_show(given)}: {msg}" if given is not None else msg


def _build(order_id: str, draft: _Draft, plant: PlantTime, errors: list[RowError],
           present: frozenset[str]) -> ImportedOrder | None:
    fields = {name: value for name, (value, _row) in draft.fields.items()}
    before = len(errors)
    ops: list[OperationIn] = []
    op_rows: dict[int, int] = {}
    for row, values in draft.ops:
        op = _op(row, values, fields.get("quantity"), errors)
        if op is None:
            draft.broken = True
            continue
        if op.seq in op_rows:
            errors.append(RowError(row, "seq", f"order {order_id} has operation {op.seq} on row {op_rows[op.seq]} "
                                               "already: each operation once, with its own seq"))
            continue
        ops.append(op)
        op_rows[op.seq] = row
    for col in COLUMNS:
        if col.required and col.order_level and col.name not in fields and not draft.broken:
            errors.append(RowError(draft.row, col.name, f"order {order_id} has no {col.name} ({col.help})"))
    if len(errors) > before or draft.broken:
        return None
    due = fields["due"]
    if isinstance(due, date):
        last = max(ops, key=lambda o: o.seq)
        end = plant.day_end(due, last.machine, last.work_centre)
        if end is None:
            where = last.machine or f"work centre {last.work_centre}"
            errors.append(RowError(draft.fields["due"][1], "due", f"{due} has no shift on {where}'s calendar (a "
                                                                  f"day off?): give a time, e.g. {due} 17:00"))
            return None
        due = end
    body = {"id": order_id, "product": fields.get("product"), "customer": fields.get("customer"),
            "quantity": fields.get("quantity"), "due": due, "priority": fields.get("priority") or 0,
            "notes": fields.get("notes"), "operations": ops}
    try:
        order = WorkOrderIn.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            column = _ORDER_FIELDS.get(str(err["loc"][0]), "order") if err["loc"] else "order"
            row = draft.fields[column][1] if column in draft.fields else draft.row
            errors.append(RowError(row, column, str(err["msg"]).removeprefix("Value error, ")))
        return None
    return ImportedOrder(order, draft.row, op_rows, present)
