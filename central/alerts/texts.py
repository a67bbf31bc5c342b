"""Words the alert messages and notifications are made of, in simplified Chinese and English.

Kept in one place so a rule's message, a robot's title and the documentation use the same
names for the same things (a plant reads 长时间停机 everywhere, not three synonyms).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from central.alerts.conditions import Lang, Rule, Severity, Texts
from plantpulse.protocol.models import MachineState

RULE_NAMES: dict[Rule, Texts] = {
    Rule.FAULT: Texts("设备故障", "machine fault"),
    Rule.LONG_STOP: Texts("长时间停机", "long stop"),
    Rule.STALL: Texts("运行无产出", "stall"),
    Rule.GATEWAY_OFFLINE: Texts("网关离线", "gateway offline"),
    Rule.DATA_GAP: Texts("数据缺失", "data gap"),
    Rule.EVENTS_DROPPED: Texts("网关丢弃事件", "events dropped at the edge"),
    Rule.CLOCK_SKEW: Texts("网关时钟偏差", "gateway clock skew"),
    Rule.ORDER_AT_RISK: Texts("工单延期风险", "order at risk"),
    Rule.ORDER_OVERDUE: Texts("工单逾期", "order overdue"),
    Rule.MATERIAL_SHORTAGE: Texts("缺料", "material shortage"),
    Rule.SHIFT_SUMMARY: Texts("班次汇总", "shift summary"),
}

SEVERITY_NAMES: dict[Severity, Texts] = {
    Severity.INFO: Texts("提示", "info"),
    Severity.WARNING: Texts("警告", "warning"),
    Severity.CRITICAL: Texts("严重", "critical"),
}

STATE_NAMES: dict[MachineState, Texts] = {
    MachineState.RUNNING: Texts("运行", "running"),
    MachineState.IDLE: Texts("待机", "idle"),
    MachineState.SETUP: Texts("调机", "setup"),
    MachineState.FAULT: Texts("故障", "fault"),
    MachineState.MAINTENANCE: Texts("维护", "maintenance"),
    MachineState.OFFLINE: Texts("通信中断", "offline"),
}

DROP_REASONS: dict[str, Texts] = {
    "buffer_full": Texts("缓冲区满", "buffer full"),
    "disk_full": Texts("磁盘满", "disk full"),
    "unavailable": Texts("网关已不再保存", "no longer held by the gateway"),
    "epoch_replaced": Texts("网关发件箱被替换", "gateway outbox replaced"),
}


def reason_text(reason: str) -> Texts:
    return DROP_REASONS.get(reason, Texts(reason, reason))


def duration(seconds: float, lang: Lang) -> str:
    """A human duration, rounded to what matters: ``45 s``, ``10 min``, ``2 h 5 min`` (zh: 秒/分钟/小时)."""
    total = round(seconds)
    if total < 120:
        return f"{total} 秒" if lang == "zh" else f"{total} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} 分钟" if lang == "zh" else f"{minutes} min"
    hours, mins = divmod(minutes, 60)
    if lang == "zh":
        return f"{hours} 小时" + (f" {mins} 分钟" if mins else "")
    return f"{hours} h" + (f" {mins} min" if mins else "")


def durations(seconds: float) -> Texts:
    return Texts(duration(seconds, "zh"), duration(seconds, "en"))


def seconds_text(value: float) -> str:
    """A threshold or measurement in seconds, without noise: ``42.5``, ``120``."""
    return f"{value:.1f}".removesuffix(".0")


def clock(ts: float, tz: tzinfo) -> str:
    """A local wall-clock time for people on the floor: ``2026-11-26 08:14:05``."""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def sanitize(text: str, limit: int = 500) -> str:
    """A person's note made safe to embed in a robot's markdown: one line, no tags or mentions, bounded.

    ``<`` and ``>`` become full-width so a note cannot inject ``<@all>`` or ``<font>``.
    """
    one_line = " ".join(text.split())
    cleaned = one_line.replace("<", "＜").replace(">", "＞")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
