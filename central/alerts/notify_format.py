"""Notification payloads: the HTTP request for each kind of receiver, built from a record (pure).

Formats (docs/alerts.md, "Notification formats" has an example of each):

* generic JSON webhook: schema v1 below, with the notification id in the body and in the
  ``X-Plantpulse-Notification-Id`` / ``Idempotency-Key`` headers; optionally signed (header);
* WeCom (企业微信) group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``
  (content at most 4096 bytes; WeCom robots have no signature);
* DingTalk (钉钉) group robot: ``msgtype: markdown`` with ``title`` and ``text``; optional 加签
  in the ``timestamp`` and ``sign`` query parameters;
* Feishu (飞书) group robot: a ``post`` (rich text) or an ``interactive`` card; optional 签名校验
  in the body's ``timestamp`` and ``sign``;
* MQTT: the generic body on ``plantpulse/v1/{site}/_central/alerts/{rule}/{subject}``.

Robots cannot deduplicate, so their texts end with the notification id: people see that a
resend after a crash is the same notification. Every text exists in zh and en; ``lang`` picks
one per target. Times are shown in ``tz`` (the plant's timezone).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from central.alerts.alert import AlertStatus, Resolution, TransitionKind
from central.alerts.conditions import Lang, Rule, Severity, Texts
from central.alerts.notifications import Notification, to_json
from central.alerts.signing import body_signature, dingtalk_sign, feishu_sign
from central.alerts.texts import RULE_NAMES, SEVERITY_NAMES, clock, sanitize
from plantpulse.protocol.topics import central_topic

SCHEMA_VERSION = 1
WECOM_LIMIT = 4096  # bytes of markdown content
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json; charset=utf-8"}

_KIND: dict[TransitionKind, Texts] = {
    TransitionKind.OPENED: Texts("新告警", "new alert"),
    TransitionKind.CONFIRMED: Texts("新告警（缓存数据确认）", "new alert (confirmed after buffered data)"),
    TransitionKind.ESCALATED: Texts("告警升级", "escalated"),
    TransitionKind.ACKNOWLEDGED: Texts("已确认", "acknowledged"),
    TransitionKind.RESOLVED: Texts("已恢复", "resolved"),
}
_RESOLUTION: dict[Resolution, Texts] = {
    Resolution.CLEARED: Texts("已恢复", "resolved"),
    Resolution.MANUAL: Texts("已手动关闭", "resolved by hand"),
    Resolution.SUPERSEDED: Texts("已被新告警取代", "superseded by a new alert"),
}
_LABELS = {
    "since": Texts("开始", "since"),
    "level": Texts("升级级别", "level"),
    "by": Texts("处理人", "by"),
    "note": Texts("备注", "note"),
    "site": Texts("工厂", "site"),
    "open": Texts("查看", "open"),
    "id": Texts("通知编号", "notification id"),
}


@dataclass(frozen=True, slots=True)
class View:
    """How one target wants to read a notification: language, timezone, site name, a link to the alert."""

    lang: Lang
    tz: tzinfo
    site: str | None = None
    link: str | None = None

    def sep(self) -> str:
        return "：" if self.lang == "zh" else ": "


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the sender posts; ``body`` is UTF-8 JSON."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"

    def json(self) -> Any:
        return json.loads(self.body)


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- shared texts
def title(n: Notification, lang: Lang) -> str:
    """``[严重] 设备故障 · 新告警`` / ``[critical] machine fault · new alert``; a shift summary: its name only."""
    if n.rule is Rule.SHIFT_SUMMARY:
        return RULE_NAMES[n.rule].get(lang)
    what = _KIND[n.kind].get(lang)
    if n.kind is TransitionKind.ESCALATED:
        what += f" {n.level} 级" if lang == "zh" else f" to level {n.level}"
    elif n.kind is TransitionKind.RESOLVED and n.resolution is not None:
        what = _RESOLUTION[n.resolution].get(lang)
    return f"[{SEVERITY_NAMES[n.severity].get(lang)}] {RULE_NAMES[n.rule].get(lang)} · {what}"


def facts(n: Notification, view: View) -> list[str]:
    """The labelled lines under the message: since, level, who and their note, site."""
    rows: list[tuple[str, str]] = []
    if n.since is not None:
        rows.append(("since", clock(n.since, view.tz)))
    if n.level and n.status is AlertStatus.OPEN:
        rows.append(("level", str(n.level)))
    if n.actor:
        rows.append(("by", sanitize(n.actor, 100)))
    if n.note:
        rows.append(("note", sanitize(n.note)))
    if view.site:
        rows.append(("site", view.site))
    return [f"{_LABELS[label].get(view.lang)}{view.sep()}{value}" for label, value in rows]


def plain_text(n: Notification, view: View) -> str:
    return "\n".join([n.message.get(view.lang), *facts(n, view)])


def _footer(n: Notification, lang: Lang) -> str:
    return f"{_LABELS['id'].get(lang)} {n.id}"


def _urgent(n: Notification) -> bool:
    return n.kind in (TransitionKind.OPENED, TransitionKind.CONFIRMED, TransitionKind.ESCALATED)


# --------------------------------------------------------------------------- generic webhook
def generic_body(n: Notification, view: View) -> dict[str, Any]:
    """The documented JSON schema (v1) of the generic webhook and the MQTT message."""
    record = to_json(n)
    fields = ("rule", "subject", "severity", "status", "level", "since", "opened_at", "message", "details")
    return {
        "v": SCHEMA_VERSION, "type": "plantpulse.alert", "id": n.id, "event": n.kind.value, "at": n.at,
        "site": view.site, "alert": {"id": n.alert_id, "subject_kind": n.subject_kind.value,
                                     **{k: record[k] for k in fields}},
        "actor": n.actor, "note": n.note, "resolution": record["resolution"],
        "lang": view.lang, "title": title(n, view.lang), "text": plain_text(n, view), "link": view.link,
    }


def generic_request(n: Notification, url: str, view: View, *, now: float, secret: str | None = None) -> HttpRequest:
    body = _dumps(generic_body(n, view))
    headers = {**JSON_HEADERS, "X-Plantpulse-Notification-Id": n.id, "Idempotency-Key": n.id}
    if secret:
        stamp = int(now)
        headers["X-Plantpulse-Timestamp"] = str(stamp)
        headers["X-Plantpulse-Signature"] = body_signature(secret, stamp, body)
    return HttpRequest(url, body, headers)


def mqtt_message(n: Notification, site: str, view: View) -> tuple[str, bytes]:
    """Topic and payload for central's alert stream (QoS 1; the id lets subscribers deduplicate)."""
    # a subject may carry MQTT wildcards (an order id like "SO#12"): a topic must not
    subject = n.subject.replace("#", "_").replace("+", "_")
    topic = central_topic(site, "alerts", n.rule.value, subject)
    return topic, _dumps(generic_body(n, replace(view, site=site)))


# --------------------------------------------------------------------------- WeCom
def wecom_markdown(n: Notification, view: View) -> str:
    colour = "warning" if _urgent(n) and n.severity is not Severity.INFO else "info"
    lines = [f"**{title(n, view.lang)}**", f'> <font color="{colour}">{n.message.get(view.lang)}</font>']
    lines += [f"> {row}" for row in facts(n, view)]
    if view.link:
        lines.append(f"[{_LABELS['open'].get(view.lang)}]({view.link})")
    lines.append(f'<font color="comment">{_footer(n, view.lang)}</font>')
    return _clip_utf8("\n".join(lines), WECOM_LIMIT)


def wecom_request(n: Notification, url: str, view: View) -> HttpRequest:
    body = {"msgtype": "markdown", "markdown": {"content": wecom_markdown(n, view)}}
    return HttpRequest(url, _dumps(body), dict(JSON_HEADERS))


def _clip_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode(errors="ignore") + "…"


# --------------------------------------------------------------------------- DingTalk
def dingtalk_markdown(n: Notification, view: View) -> str:
    parts = [f"#### {title(n, view.lang)}", f"**{n.message.get(view.lang)}**"]
    rows = facts(n, view)
    if rows:
        parts.append("\n".join(f"- {row}" for row in rows))
    if view.link:
        parts.append(f"[{_LABELS['open'].get(view.lang)}]({view.link})")
    parts.append(_footer(n, view.lang))
    return "\n\n".join(parts)


def dingtalk_request(n: Notification, url: str, view: View, *, now: float, secret: str | None = None) -> HttpRequest:
    body = {"msgtype": "markdown", "markdown": {"title": title(n, view.lang), "text": dingtalk_markdown(n, view)}}
    if secret:
        stamp = round(now * 1000)
        url = _with_query(url, f"timestamp={stamp}&sign={dingtalk_sign(secret, stamp)}")
    return HttpRequest(url, _dumps(body), dict(JSON_HEADERS))


def _with_query(url: str, extra: str) -> str:
    """``url`` with ``extra`` (already encoded) appended to its query, keeping ``access_token``."""
    parts = urlsplit(url)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


# --------------------------------------------------------------------------- Feishu
_FEISHU_LANG = {"zh": "zh_cn", "en": "en_us"}


def _feishu_template(n: Notification) -> str:
    if n.kind is TransitionKind.RESOLVED:
        return "green"
    if n.kind is TransitionKind.ACKNOWLEDGED:
        return "blue"
    return {Severity.CRITICAL: "red", Severity.WARNING: "orange", Severity.INFO: "blue"}[n.severity]


def feishu_post(n: Notification, view: View) -> dict[str, Any]:
    paragraphs: list[list[dict[str, str]]] = [[{"tag": "text", "text": n.message.get(view.lang)}]]
    paragraphs += [[{"tag": "text", "text": row}] for row in facts(n, view)]
    if view.link:
        paragraphs.append([{"tag": "a", "text": _LABELS["open"].get(view.lang), "href": view.link}])
    paragraphs.append([{"tag": "text", "text": _footer(n, view.lang)}])
    post = {_FEISHU_LANG[view.lang]: {"title": title(n, view.lang), "content": paragraphs}}
    return {"msg_type": "post", "content": {"post": post}}


def feishu_card(n: Notification, view: View) -> dict[str, Any]:
    text = "\n".join([f"**{n.message.get(view.lang)}**", *facts(n, view)])
    elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": text}}]
    if view.link:
        label = {"tag": "plain_text", "content": _LABELS["open"].get(view.lang)}
        elements.append({"tag": "action", "actions": [{"tag": "button", "text": label, "type": "primary",
                                                       "url": view.link}]})
    elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": _footer(n, view.lang)}]})
    header = {"template": _feishu_template(n), "title": {"tag": "plain_text", "content": title(n, view.lang)}}
    return {"msg_type": "interactive", "card": {"config": {"wide_screen_mode": True}, "header": header,
                                                "elements": elements}}


def feishu_request(
    n: Notification, url: str, view: View, *, now: float, secret: str | None = None, card: bool = True
) -> HttpRequest:
    body = feishu_card(n, view) if card else feishu_post(n, view)
    if secret:
        stamp = int(now)
        body = {"timestamp": str(stamp), "sign": feishu_sign(secret, stamp), **body}
    return HttpRequest(url, _dumps(body), dict(JSON_HEADERS))
