"""Notification payloads for every receiver; signatures checked against values computed here by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, quote_plus, urlsplit
from zoneinfo import ZoneInfo

import pytest

from central.alerts.alert import AlertStatus, Resolution, TransitionKind
from central.alerts.conditions import Rule, Severity, Texts
from central.alerts.notifications import Notification
from central.alerts.notify_format import (
    View,
    dingtalk_request,
    feishu_request,
    generic_request,
    mqtt_message,
    title,
    wecom_markdown,
    wecom_request,
)
from central.alerts.signing import verify_body_signature

TZ = ZoneInfo("Asia/Shanghai")
T = 1_795_739_640.0  # 2026-11-27 08:34:00 in Shanghai
NOW = 1_795_742_100.5  # when the sender sends it
SECRET = "SECtest0123456789abcdef"
ZH = View("zh", TZ, site="suzhou", link="http://central.local:8080/#alert=abc")
EN = View("en", TZ)


def note(**kw: object) -> Notification:
    base: dict[str, object] = {
        "id": "0f3c9a1b2d4e5f607182.0-opened", "alert_id": "0f3c9a1b2d4e5f607182", "kind": TransitionKind.OPENED,
        "at": T + 2, "rule": Rule.FAULT, "subject": "cnc-01", "severity": Severity.CRITICAL,
        "status": AlertStatus.OPEN, "level": 0,
        "message": Texts("CNC 1 (cnc-01) 故障 101：主轴过载", "CNC 1 (cnc-01) fault 101: spindle overload"),
        "details": {"machine": "cnc-01", "fault_code": 101}, "since": T, "opened_at": T + 2,
    }
    return Notification(**{**base, **kw})  # type: ignore[arg-type]


def test_titles_in_both_languages() -> None:
    assert title(note(), "zh") == "[严重] 设备故障 · 新告警"
    assert title(note(), "en") == "[critical] machine fault · new alert"
    escalated = note(kind=TransitionKind.ESCALATED, level=2)
    assert title(escalated, "zh") == "[严重] 设备故障 · 告警升级 2 级"
    assert title(escalated, "en") == "[critical] machine fault · escalated to level 2"
    resolved = note(kind=TransitionKind.RESOLVED, resolution=Resolution.MANUAL, status=AlertStatus.RESOLVED)
    assert title(resolved, "zh") == "[严重] 设备故障 · 已手动关闭"


# --------------------------------------------------------------------------- generic
def test_generic_webhook_body_headers_and_signature() -> None:
    n = note(kind=TransitionKind.ACKNOWLEDGED, id="0f3c9a1b2d4e5f607182.1-acknowledged", actor="张工",
             note="换轴承", status=AlertStatus.ACKNOWLEDGED)
    request = generic_request(n, "https://mes.example.local/hooks/plantpulse", ZH, now=NOW, secret=SECRET)
    body = request.json()
    assert body["v"] == 1 and body["type"] == "plantpulse.alert" and body["event"] == "acknowledged"
    assert body["id"] == "0f3c9a1b2d4e5f607182.1-acknowledged" and body["site"] == "suzhou"
    assert body["alert"] == {
        "id": "0f3c9a1b2d4e5f607182", "subject_kind": "machine", "rule": "fault", "subject": "cnc-01",
        "severity": "critical", "status": "acknowledged", "level": 0, "since": T, "opened_at": T + 2,
        "message": {"zh": "CNC 1 (cnc-01) 故障 101：主轴过载", "en": "CNC 1 (cnc-01) fault 101: spindle overload"},
        "details": {"machine": "cnc-01", "fault_code": 101},
    }
    assert (body["actor"], body["note"], body["resolution"], body["lang"]) == ("张工", "换轴承", None, "zh")
    assert body["title"] == "[严重] 设备故障 · 已确认"
    assert body["text"] == (
        "CNC 1 (cnc-01) 故障 101：主轴过载\n开始：2026-11-27 08:34:00\n处理人：张工\n备注：换轴承\n工厂：suzhou"
    )
    headers = request.headers
    assert headers["X-Plantpulse-Notification-Id"] == headers["Idempotency-Key"] == body["id"]
    assert headers["X-Plantpulse-Timestamp"] == "1795742100"
    expected = hmac.new(SECRET.encode(), b"1795742100." + request.body, hashlib.sha256).hexdigest()
    assert headers["X-Plantpulse-Signature"] == f"sha256={expected}"
    assert verify_body_signature(SECRET, 1795742100, request.body, headers["X-Plantpulse-Signature"])
    assert not verify_body_signature(SECRET, 1795742101, request.body, headers["X-Plantpulse-Signature"])
    unsigned = generic_request(n, "https://mes.example.local/x", EN, now=NOW)
    assert "X-Plantpulse-Signature" not in unsigned.headers
    assert unsigned.json()["text"].startswith("CNC 1 (cnc-01) fault")


def test_mqtt_topic_and_payload() -> None:
    topic, payload = mqtt_message(note(), "suzhou", EN)
    assert topic == "plantpulse/v1/suzhou/_central/alerts/fault/cnc-01"
    assert b'"id":"0f3c9a1b2d4e5f607182.0-opened"' in payload and b'"site":"suzhou"' in payload


# --------------------------------------------------------------------------- WeCom
def test_wecom_markdown_message() -> None:
    request = wecom_request(note(), "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", ZH)
    assert request.url == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"
    assert request.json() == {"msgtype": "markdown", "markdown": {"content": (
        "**[严重] 设备故障 · 新告警**\n"
        '> <font color="warning">CNC 1 (cnc-01) 故障 101：主轴过载</font>\n'
        "> 开始：2026-11-27 08:34:00\n"
        "> 工厂：suzhou\n"
        "[查看](http://central.local:8080/#alert=abc)\n"
        '<font color="comment">通知编号 0f3c9a1b2d4e5f607182.0-opened</font>'
    )}}
    resolved = wecom_markdown(note(kind=TransitionKind.RESOLVED, resolution=Resolution.CLEARED), EN)
    assert '<font color="info">' in resolved and "**[critical] machine fault · resolved**" in resolved


def test_wecom_content_stays_within_4096_bytes_and_notes_cannot_inject_markup() -> None:
    long_note = note(kind=TransitionKind.ACKNOWLEDGED, actor="张工", note="<@all> 请全员注意\n" + "很长" * 3000)
    content = wecom_markdown(long_note, ZH)
    assert len(content.encode()) <= 4096
    assert "<@all>" not in content and "＜@all＞ 请全员注意" in content
    huge = note(message=Texts("故" * 3000, "x"))
    assert len(wecom_markdown(huge, ZH).encode()) <= 4096 and wecom_markdown(huge, ZH).endswith("…")


# --------------------------------------------------------------------------- DingTalk
def test_dingtalk_markdown_with_jiaqian_signature() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=tok123"
    request = dingtalk_request(note(), url, ZH, now=NOW, secret=SECRET)
    stamp = "1795742100500"  # milliseconds
    digest = hmac.new(SECRET.encode(), f"{stamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    assert request.url == f"{url}&timestamp={stamp}&sign={sign}"
    query = parse_qs(urlsplit(request.url).query)
    assert query["access_token"] == ["tok123"] and query["sign"] == [base64.b64encode(digest).decode()]
    body = request.json()
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == "[严重] 设备故障 · 新告警"
    assert body["markdown"]["text"] == (
        "#### [严重] 设备故障 · 新告警\n\n**CNC 1 (cnc-01) 故障 101：主轴过载**\n\n"
        "- 开始：2026-11-27 08:34:00\n- 工厂：suzhou\n\n[查看](http://central.local:8080/#alert=abc)\n\n"
        "通知编号 0f3c9a1b2d4e5f607182.0-opened"
    )
    assert dingtalk_request(note(), url, EN, now=NOW).url == url  # no secret: no signature


def test_dingtalk_signature_is_url_encoded() -> None:
    # find a moment whose signature contains characters that URL encoding must escape
    for ms in range(1_795_742_100_000, 1_795_742_100_200):
        raw = base64.b64encode(hmac.new(b"k", f"{ms}\nk".encode(), hashlib.sha256).digest()).decode()
        if "+" in raw or "/" in raw:
            break
    request = dingtalk_request(note(), "https://oapi.dingtalk.com/robot/send?access_token=t", EN, now=ms / 1000,
                               secret="k")
    sent = request.url.split("sign=")[1]
    assert "+" not in sent and "/" not in sent and parse_qs(urlsplit(request.url).query)["sign"] == [raw]


# --------------------------------------------------------------------------- Feishu
def feishu_sign_by_hand(stamp: int) -> str:
    key = f"{stamp}\n{SECRET}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def test_feishu_card_with_signature() -> None:
    url = "https://open.feishu.cn/open-apis/bot/v2/hook/abc-123"
    request = feishu_request(note(), url, ZH, now=NOW, secret=SECRET)
    body = request.json()
    assert request.url == url
    assert body["timestamp"] == "1795742100" and body["sign"] == feishu_sign_by_hand(1795742100)
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"] == {"template": "red", "title": {"tag": "plain_text", "content": "[严重] 设备故障 · 新告警"}}
    assert card["elements"][0] == {"tag": "div", "text": {"tag": "lark_md", "content": (
        "**CNC 1 (cnc-01) 故障 101：主轴过载**\n开始：2026-11-27 08:34:00\n工厂：suzhou"
    )}}
    assert card["elements"][1]["actions"][0]["url"] == "http://central.local:8080/#alert=abc"
    assert card["elements"][-1]["elements"][0]["content"] == "通知编号 0f3c9a1b2d4e5f607182.0-opened"


def test_feishu_post_in_english_without_signature() -> None:
    resolved = note(kind=TransitionKind.RESOLVED, resolution=Resolution.CLEARED, status=AlertStatus.RESOLVED)
    body = feishu_request(resolved, "https://open.feishu.cn/open-apis/bot/v2/hook/x", EN, now=NOW, card=False).json()
    assert "sign" not in body and "timestamp" not in body
    assert body == {"msg_type": "post", "content": {"post": {"en_us": {
        "title": "[critical] machine fault · resolved",
        "content": [
            [{"tag": "text", "text": "CNC 1 (cnc-01) fault 101: spindle overload"}],
            [{"tag": "text", "text": "since: 2026-11-27 08:34:00"}],
            [{"tag": "text", "text": "notification id 0f3c9a1b2d4e5f607182.0-opened"}],
        ],
    }}}}


@pytest.mark.parametrize(("kind", "severity", "template"), [
    (TransitionKind.OPENED, Severity.WARNING, "orange"),
    (TransitionKind.ESCALATED, Severity.INFO, "blue"),
    (TransitionKind.ACKNOWLEDGED, Severity.CRITICAL, "blue"),
    (TransitionKind.RESOLVED, Severity.CRITICAL, "green"),
])
def test_feishu_card_colours(kind: TransitionKind, severity: Severity, template: str) -> None:
    body = feishu_request(note(kind=kind, severity=severity), "https://open.feishu.cn/x", EN, now=NOW).json()
    assert body["card"]["header"]["template"] == template
