"""Order import parsing: the template, CSV/XLSX quirks, plant time, date-only due times and row-level errors."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from central.imports.plant_time import CatalogTime
from central.imports.rows import ImportRejectedError, parse_orders
from central.imports.sheet import SheetError, read_sheet
from central.imports.template import header_line
from central.progress.machines import Catalog, MachinesConfig

SH = ZoneInfo("Asia/Shanghai")
EXAMPLE = Path(__file__).parents[3] / "examples" / "orders-import.csv"
PLANT = CatalogTime(Catalog(MachinesConfig.model_validate({
    "timezone": "Asia/Shanghai",
    "lines": [{"id": "a", "shifts": {"timezone": "Asia/Shanghai", "shifts": [
        {"name": "day", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
        {"name": "night", "days": ["fri"], "start": "20:00", "end": "04:00"}]}}],
    "machines": [{"id": "cnc-01", "line": "a"}, {"id": "mill-01", "line": "a"},
                 {"id": "weld-01", "line": "a", "work_centre": "welding"}],
})))
HEAD = "order,product,quantity,due,seq,operation,machine,cycle_time"


def sh(*args: int) -> float:
    return datetime(*args, tzinfo=SH).timestamp()  # type: ignore[misc]


def parse(text: str) -> list:  # type: ignore[type-arg]
    return parse_orders(read_sheet(text.encode()), PLANT)


def errors(text: str | bytes) -> list[tuple[int | None, str | None]]:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(ImportRejectedError) as caught:
        parse_orders(read_sheet(data), PLANT)
    return [(e.row, e.column) for e in caught.value.errors]


def test_the_example_file_imports() -> None:
    orders = parse_orders(read_sheet(EXAMPLE.read_bytes()), PLANT)
    assert [o.order.id for o in orders] == ["SO-1001", "SO-1002"]
    first, second = orders[0].order, orders[1].order
    assert first.due == sh(2026, 12, 4, 16)  # no offset: plant time
    assert [(op.seq, op.machine, op.quantity, op.ideal_cycle_time, op.setup_time, op.job)
            for op in first.operations] == [(10, "cnc-01", 120, 45.0, 900.0, "1001"),
                                            (20, "mill-01", 120, 120.0, 0.0, None)]
    # 2026-12-05 is a Saturday without shifts on line a? no: the last op is at work centre assembly,
    # unknown to this catalog, so the end of the date in plant time
    assert second.due == sh(2026, 12, 6, 0)
    assert second.operations[1].work_centre == "welding" and second.operations[1].transfer_quantity == 20
    assert second.operations[2].count_source == "reports" and second.priority == 5
    assert orders[1].op_rows == {10: 4, 20: 5, 30: 6}
    assert header_line() == EXAMPLE.read_text().splitlines()[0]


def test_a_date_only_due_is_the_end_of_that_dates_last_shift() -> None:
    thursday = parse(f"{HEAD}\nA,p,5,2026-12-03,10,turn,cnc-01,30\n")[0].order
    assert thursday.due == sh(2026, 12, 3, 17)
    friday = parse(f"{HEAD}\nA,p,5,2026/12/4,10,turn,cnc-01,30\n")[0].order
    assert friday.due == sh(2026, 12, 5, 4)  # the night shift that starts on Friday ends on Saturday
    centre = parse("order,product,quantity,due,seq,operation,work_centre,cycle_time\nA,p,5,2026-12-03,10,w,welding,3\n")
    assert centre[0].order.due == sh(2026, 12, 3, 17)  # a work centre: its machines' line
    assert errors(f"{HEAD}\nA,p,5,2026-12-05,10,turn,cnc-01,30\n") == [(2, "due")]  # Saturday: no shift


@pytest.mark.parametrize(("due", "expected"), [
    ("2026-12-04 16:00", sh(2026, 12, 4, 16)),
    ("2026-12-04T16:00:00+08:00", sh(2026, 12, 4, 16)),
    ("2026-12-04T08:00:00Z", sh(2026, 12, 4, 16)),
    ("2026/12/4 8:30", sh(2026, 12, 4, 8, 30)),
    ("1796371200", 1796371200.0),
])
def test_due_time_forms(due: str, expected: float) -> None:
    assert parse(f"{HEAD}\nA,p,5,{due},10,turn,cnc-01,30\n")[0].order.due == expected


def test_durations_with_units_and_order_fields_on_the_first_row_only() -> None:
    text = ("order,product,quantity,due,seq,operation,machine,cycle_time,setup_time\n"
            "A,p,5,2026-12-04 16:00,10,turn,cnc-01,1.5min,0.5h\n"
            "A,,,,20,mill,mill-01,90s,30分钟\n"
            "A,p,5,,30,deburr,mill-01,12,\n")
    ops = parse(text)[0].order.operations
    assert [(o.ideal_cycle_time, o.setup_time) for o in ops] == [(90.0, 1800.0), (90.0, 1800.0), (12.0, 0.0)]


def test_every_error_is_listed_with_its_row_and_column_and_nothing_is_imported() -> None:
    text = (f"{HEAD}\n"
            "A,p,5,2026-12-04 16:00,10,turn,cnc-01,30\n"
            "A,p,6,,20,mill,mill-01,30\n"            # quantity differs from row 2
            "B,p,5,tomorrow,10,turn,cnc-01,30\n"      # not a time
            ",p,5,2026-12-04 16:00,10,turn,cnc-01,30\n"  # no order id
            "C,p,5,2026-12-04 16:00,10,turn,cnc 01,fast\n"  # bad machine id, bad cycle time
            "D,p,5,2026-12-04 16:00,10,turn,cnc-01,30\n"
            "D,p,5,2026-12-04 16:00,10,again,cnc-01,30\n"  # seq twice
            "E,p,0,2026-12-04 16:00,x,turn,cnc-01,30\n")  # quantity 0, seq not a number
    assert errors(text) == [(3, "quantity"), (4, "due"), (5, "order"), (6, "cycle_time"), (8, "seq"),
                            (9, "seq")]
    # once the cells parse, the model's bounds are checked (and named by column)
    assert errors(f"{HEAD}\nC,p,5,2026-12-04 16:00,10,turn,cnc 01,30\nE,p,0,2026-12-04 16:00,10,t,cnc-01,30\n"
                  ) == [(2, "machine"), (3, "quantity")]


def test_header_problems_are_reported_before_rows() -> None:
    assert errors("order,product,quantity,dew,seq,operation,machine,cycle_time\n") == [
        (1, "dew"), (1, "due")]
    assert errors("order,product,quantity,due,seq,operation,cycle_time\nA,p,5,2026-12-04,10,t,3\n") == [
        (1, "machine")]
    assert errors("order,order_id,product,quantity,due,seq,operation,machine,cycle_time\n") == [(1, "order_id")]


def test_chinese_headers_and_a_gb18030_csv() -> None:
    text = "工单号,产品,客户,数量,交期,工序号,工序,机台,节拍\nSO-1,支架,华为,10,2026-12-04 16:00,10,车削,cnc-01,45\n"
    orders = parse_orders(read_sheet(text.encode("gb18030")), PLANT)
    assert orders[0].order.product == "支架" and orders[0].order.operations[0].name == "车削"
    bom_semicolon = ("\ufefforder;product;quantity;due;seq;operation;machine;cycle_time\n"
                     "A;p;5;2026-12-04 16:00;10;t;cnc-01;3\n")
    assert parse(bom_semicolon)[0].order.quantity == 5


def xlsx(rows: list[list[object]], *, date_format: str | None = None, sheet: str = "Sheet1") -> bytes:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet
    for r in rows:
        ws.append(r)
    if date_format is not None:
        for row in ws.iter_rows(min_row=2):
            row[3].number_format = date_format
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_cells_numbers_dates_and_date_times() -> None:
    head = [*HEAD.split(","), "job"]
    rows = [head, ["A", "p", 5, datetime(2026, 12, 4, 16, 0), 10, "turn", "cnc-01", 45, 1001],
            ["B", "p", 5.0, datetime(2026, 12, 3), 10, "turn", "cnc-01", 1.5, None]]
    orders = parse_orders(read_sheet(xlsx(rows, date_format="yyyy-mm-dd")), PLANT)
    assert orders[0].order.due == sh(2026, 12, 4, 16) and orders[0].order.operations[0].job == "1001"
    assert orders[1].order.due == sh(2026, 12, 3, 17)  # a date cell: the end of the last shift
    timed = parse_orders(read_sheet(xlsx(rows, date_format="yyyy-mm-dd hh:mm")), PLANT)
    assert timed[1].order.due == sh(2026, 12, 3, 0)  # midnight formatted as a time: that time
    named = xlsx([["x"], ["y"]], sheet="notes")
    book = openpyxl.load_workbook(io.BytesIO(xlsx(rows)))
    book.create_sheet("orders")
    for r in rows:
        book["orders"].append(r)
    out = io.BytesIO()
    book.save(out)
    assert len(parse_orders(read_sheet(out.getvalue()), PLANT)) == 2  # the sheet named orders, not the first
    with pytest.raises(ImportRejectedError):
        parse_orders(read_sheet(named), PLANT)


def test_unreadable_files_say_what_to_do() -> None:
    for data, words in [(b"", "empty"), (b"PK\x03\x04garbage", "cannot be opened"),
                        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
                        (b"\xff\xfe\xfa" * 10, "UTF-8")]:
        with pytest.raises(SheetError, match=words):
            read_sheet(data)


def test_a_value_under_no_column_and_blank_rows() -> None:
    assert errors(f"{HEAD}\nA,p,5,2026-12-04 16:00,10,t,cnc-01,3,extra\n") == [(2, "column 9")]
    orders = parse(f"{HEAD}\n,,,,,,,\nA,p,5,2026-12-04 16:00,10,t,cnc-01,3\n\n")
    assert orders[0].row == 3 and date(2026, 12, 4)
