"""When shift summaries are due (shift ends per line, days off, daily without calendars) and their text."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from central.progress.machines import MachinesConfig
from central.summaries.texts import summary_text
from central.summaries.windows import ended

SH = ZoneInfo("Asia/Shanghai")


def sh(*args: int) -> float:
    return datetime(*args, tzinfo=SH).timestamp()  # type: ignore[misc]


CFG = MachinesConfig.model_validate({
    "timezone": "Asia/Shanghai",
    "lines": [{"id": "a", "shifts": {"timezone": "Asia/Shanghai", "days_off": ["2026-12-04"], "shifts": [
        {"name": "day", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
        {"name": "night", "days": ["thu"], "start": "20:00", "end": "04:00"}]}}, {"id": "b"}],
})


def test_each_shift_end_once_in_a_span_and_days_off_have_none() -> None:
    due = ended(CFG, sh(2026, 12, 3, 0), sh(2026, 12, 5, 12))  # Thursday 0:00 .. Saturday noon
    assert [(d.window.name, d.window.line, d.window.end) for d in due] == [
        ("day", "a", sh(2026, 12, 3, 17)), ("night", "a", sh(2026, 12, 4, 4))]  # Friday is a day off
    assert due[1].id == f"a/night/{int(sh(2026, 12, 3, 20))}" and due[1].window.start == sh(2026, 12, 3, 20)
    assert ended(CFG, sh(2026, 12, 3, 17), sh(2026, 12, 3, 18)) == []  # (since, now]: already past
    assert len(ended(CFG, sh(2026, 12, 3, 16, 59), sh(2026, 12, 3, 17))) == 1


def test_without_calendars_one_plant_summary_per_day() -> None:
    plain = MachinesConfig.model_validate({"timezone": "Asia/Shanghai"})
    due = ended(plain, sh(2026, 12, 3, 12), sh(2026, 12, 5, 1))
    assert [(d.id, d.window.line, d.window.end) for d in due] == [
        (f"plant/day/{int(sh(2026, 12, 3))}", None, sh(2026, 12, 4)),
        (f"plant/day/{int(sh(2026, 12, 4))}", None, sh(2026, 12, 5))]


def test_the_text_lists_what_matters_and_cuts_long_lists() -> None:
    summary = {
        "shift": {"name": "day", "line": "a", "start": sh(2026, 12, 3, 8), "end": sh(2026, 12, 3, 17)},
        "completed": [{"order": "SO-1", "product": "p", "customer": None, "completed_at": 1, "due": 2, "late": False}],
        "late": [{"order": f"SO-{i}", "product": "bracket", "due": sh(2026, 12, 3, 12), "status": "open",
                  "late_by": 5 * 3600} for i in range(8)],
        "at_risk": [{"order": "SO-9", "projected_finish": sh(2026, 12, 4, 18), "due": sh(2026, 12, 4, 16),
                     "cause": "fault", "machine": "cnc-01", "operation": 10}],
        "downtime": [{"cause": "fault 101", "seconds": 3000.0, "machines": ["cnc-01"]},
                     {"cause": "material", "seconds": 1200.0, "machines": ["mill-01"]}],
        "oee": {"a": {"oee": 0.61234, "availability": 0.8, "performance": 0.9, "quality": 0.85}},
    }
    zh = summary_text(summary, "zh", SH, top=3)
    assert "班次汇总 · a · day" in zh and "完工工单: 1 · 延期工单: 8 · 有延期风险: 1" in zh
    assert "另有 5 条" in zh and "故障 101: 50m (cnc-01)" in zh and "待料: 20m" in zh and "OEE a: 61.2%" in zh
    en = summary_text(summary, "en", SH, top=3)
    assert "late by 5h00m (open)" in en and "SO-9 due 12-04 16:00, projected 12-04 18:00, fault @ cnc-01" in en
