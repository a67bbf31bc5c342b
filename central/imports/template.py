"""The order import template: one row per operation, the order's columns on its rows (docs/api.md, "Import").

The columns a planner's spreadsheet may have, each with its English name and the Chinese names a
Chinese planner writes (simplified and traditional), matched without case, spaces, ``_`` or ``-``.
Unknown columns are an error rather than ignored: a misspelt ``due`` would otherwise import every
order without its due time being read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    required: bool
    order_level: bool  # an order's value: on its first row, repeated or left empty on the others
    help: str


COLUMNS: tuple[Column, ...] = (
    Column("order", ("order_id", "工单", "工单号", "工單", "工單號", "订单号"), True, True,
           "the order id, e.g. SO-1001 (letters, digits, _ . / # -)"),
    Column("product", ("产品", "產品", "品名"), True, True, "what is made, e.g. bracket"),
    Column("customer", ("客户", "客戶"), False, True, "e.g. ACME"),
    Column("quantity", ("order_quantity", "数量", "數量", "订单数量"), True, True, "parts ordered, e.g. 120"),
    Column("due", ("交期", "交货期", "due_date"), True, True,
           "2026-12-04 16:00 (plant time), 2026-12-04T16:00+08:00, or a date: the end of its last shift"),
    Column("priority", ("优先级", "優先級"), False, True, "0 to 1000, higher first (default 0)"),
    Column("notes", ("备注", "備註"), False, True, "free text"),
    Column("seq", ("工序号", "工序號", "operation_seq"), True, False, "the operation's position, e.g. 10, 20"),
    Column("operation", ("工序", "operation_name"), True, False, "what is done, e.g. turn, 车削"),
    Column("machine", ("机台", "機台", "设备", "設備"), False, False, "machine id, e.g. cnc-01"),
    Column("work_centre", ("work_center", "工作中心"), False, False, "a work centre instead of a machine"),
    Column("op_quantity", ("工序数量", "工序數量"), False, False, "planned good parts (default: the order's)"),
    Column("cycle_time", ("ideal_cycle_time", "节拍", "節拍", "标准工时"), True, False,
           "ideal time per part: seconds, or with a unit: 45s, 1.5min, 0.1h"),
    Column("setup_time", ("换线时间", "換線時間", "调机时间", "調機時間"), False, False,
           "changeover before the first part: seconds or 15min (default 0)"),
    Column("job", ("程序号", "程序號", "job_number"), False, False, "job/program number the machine reports"),
    Column("transfer_quantity", ("转序数量", "轉序數量"), False, False,
           "parts of the previous operation needed to start (default: all)"),
    Column("count_source", ("计数来源", "計數來源"), False, False, "machine (PLC counts, default) or reports (scans)"),
)

BY_KEY: dict[str, Column] = {}


def key(text: str) -> str:
    """How header cells are compared: lower case, without spaces, ``_`` and ``-``."""
    return "".join(ch for ch in text.lower() if ch not in " _-\u3000")


for _col in COLUMNS:
    for _name in (_col.name, *_col.aliases):
        BY_KEY[key(_name)] = _col


def header_line() -> str:
    """The template's header as a CSV line."""
    return ",".join(c.name for c in COLUMNS)
