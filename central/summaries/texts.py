"""A shift summary as a short markdown text for chat robots and webhooks, in Chinese and English (pure).

A chat message is read on a phone at the shift change: headline figures first (orders done, late,
at risk, OEE per line), then the few orders and stop causes worth acting on, each list cut to
``top`` lines with "and N more", so that a plant with 300 orders still gets a readable message.
Order ids and product names come from planners: they are sanitised like people's notes.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from central.alerts.conditions import Lang, Texts
from central.alerts.texts import clock, sanitize

_L = {
    "title": Texts("班次汇总", "Shift summary"),
    "plant": Texts("全厂", "plant"),
    "completed": Texts("完工工单", "Orders completed"),
    "late": Texts("延期工单", "Late orders"),
    "at_risk": Texts("有延期风险", "At risk"),
    "downtime": Texts("主要停机原因", "Top downtime causes"),
    "oee": Texts("OEE", "OEE"),
    "none": Texts("无", "none"),
    "more": Texts("另有 {n} 条", "and {n} more"),
    "due": Texts("交期", "due"),
    "eta": Texts("预计完工", "projected"),
    "late_by": Texts("延期", "late by"),
    "open": Texts("未完工", "open"),
}
_CAUSES = {
    "fault": Texts("故障", "fault"), "setup": Texts("换线调机", "setup"), "idle": Texts("待机", "idle"),
    "maintenance": Texts("保养维修", "maintenance"), "offline": Texts("离线", "offline"),
    "micro_stops": Texts("短暂停机", "micro-stops"), "material": Texts("待料", "waiting for material"),
    "no_operator": Texts("缺人", "no operator"), "quality_hold": Texts("品质待判", "quality hold"),
    "tooling": Texts("待刀具治具", "tooling"), "planned_stop": Texts("计划停机", "planned stop"),
    "other": Texts("其他", "other"), "slow_rate": Texts("速度慢", "slow rate"),
    "rush_order_ahead": Texts("插单", "rush order ahead"), "shift_end": Texts("班次结束", "shift end"),
    "load": Texts("负荷", "load"),
}


def _hm(seconds: float) -> str:
    m = max(0, round(seconds / 60))
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def _pct(x: object) -> str:
    return f"{float(x) * 100:.1f}%" if isinstance(x, int | float) else "-"


def _cause(text: str, lang: Lang) -> str:
    head, _, rest = text.partition(" ")
    known = _CAUSES.get(head)
    return f"{known.get(lang)} {rest}".strip() if known else sanitize(text, 60)


def summary_text(summary: dict[str, Any], lang: Lang, tz: tzinfo, *, top: int = 5) -> str:
    """The message for ``summary`` (``progress.summary.shift_summary``'s dict)."""
    t = {k: v.get(lang) for k, v in _L.items()}
    shift = summary["shift"]
    scope = sanitize(str(shift.get("line") or t["plant"]), 60)
    lines = [f"**{t['title']} · {scope} · {sanitize(str(shift['name']), 40)}**",
             f"{clock(shift['start'], tz)[:16]} – {clock(shift['end'], tz)[:16]}"]
    completed, late, risk = summary.get("completed", []), summary.get("late", []), summary.get("at_risk", [])
    lines.append(f"{t['completed']}: {len(completed)} · {t['late']}: {len(late)} · {t['at_risk']}: {len(risk)}")
    for line_id, o in sorted(summary.get("oee", {}).items()):
        lines.append(f"{t['oee']} {sanitize(str(line_id), 40)}: {_pct(o.get('oee'))} (A {_pct(o.get('availability'))}"
                     f" · P {_pct(o.get('performance'))} · Q {_pct(o.get('quality'))})")

    def listing(title: str, rows: list[dict[str, Any]], fmt: Any) -> None:
        lines.append(f"{title}:" + ("" if rows else f" {t['none']}"))
        for row in rows[:top]:
            lines.append(f"- {fmt(row)}")
        if len(rows) > top:
            lines.append("- " + t["more"].format(n=len(rows) - top))

    listing(t["late"], late, lambda r: f"{sanitize(str(r['order']), 64)} {sanitize(str(r.get('product') or ''), 40)}"
            f" {t['due']} {clock(r['due'], tz)[5:16]}, {t['late_by']} {_hm(r.get('late_by') or 0)}"
            + (f" ({t['open']})" if r.get("status") == "open" else ""))
    listing(t["at_risk"], risk, lambda r: f"{sanitize(str(r['order']), 64)} {t['due']} {clock(r['due'], tz)[5:16]}"
            + (f", {t['eta']} {clock(r['projected_finish'], tz)[5:16]}" if r.get("projected_finish") else "")
            + (f", {_cause(str(r['cause']), lang)}" if r.get("cause") else "")
            + (f" @ {sanitize(str(r['machine']), 64)}" if r.get("machine") else ""))
    listing(t["downtime"], summary.get("downtime", []), lambda r: f"{_cause(str(r['cause']), lang)}: "
            f"{_hm(r['seconds'])} ({', '.join(sanitize(str(m), 64) for m in r.get('machines', [])[:5])})")
    return "\n".join(lines)


def summary_texts(summary: dict[str, Any], tz: tzinfo, *, top: int = 5) -> Texts:
    return Texts(summary_text(summary, "zh", tz, top=top), summary_text(summary, "en", tz, top=top))
