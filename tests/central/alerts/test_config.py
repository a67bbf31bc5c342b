"""Alert configuration and webhook targets: defaults, overrides, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from central.alerts.alert import AlertStatus, TransitionKind
from central.alerts.conditions import Rule, Severity, Texts
from central.alerts.config import AlertsConfig
from central.alerts.notifications import Notification
from central.alerts.targets import WebhookKind, WebhookTarget, build_request, wants
from plantpulse.configfile import ConfigError, parse_yaml_model
from plantpulse.protocol.models import MachineState


def test_built_in_defaults() -> None:
    config = AlertsConfig()
    limits = config.machine_thresholds("cnc-01", None)
    assert (limits.long_stop_after, limits.stall_factor, limits.stall_min) == (600.0, 3.0, 120.0)
    assert limits.long_stop_states == {MachineState.IDLE, MachineState.SETUP, MachineState.OFFLINE}
    assert limits.severity == {Rule.FAULT: Severity.CRITICAL, Rule.LONG_STOP: Severity.WARNING,
                               Rule.STALL: Severity.WARNING}
    gateway = config.gateway_thresholds()
    assert (gateway.offline_grace, gateway.skew_bound, gateway.gap_hold) == (30.0, 10.0, 1800.0)
    assert gateway.severity[Rule.CLOCK_SKEW] is Severity.INFO and gateway.severity[Rule.DATA_GAP] is Severity.WARNING
    assert (config.escalation.after, config.escalation.period, config.escalation.max_level) == (900.0, 900.0, 3)


def test_machine_beats_line_beats_plant_field_by_field() -> None:
    config = parse_yaml_model(AlertsConfig, """
machines_default: {long_stop_after: 1200, stall_factor: 4, disabled: [stall]}
lines:
  line-a: {long_stop_after: 300, stall_min: 30, severity: {long_stop: critical, stall: info}}
machines:
  cnc-01: {long_stop_after: 900, disabled: [], severity: {stall: critical}}
severity: {fault: warning}
escalation: {after: 600, every: 1200}
""")
    cnc = config.machine_thresholds("cnc-01", "line-a")
    assert (cnc.long_stop_after, cnc.stall_factor, cnc.stall_min, cnc.disabled) == (900.0, 4.0, 30.0, frozenset())
    assert cnc.severity == {Rule.FAULT: Severity.WARNING, Rule.LONG_STOP: Severity.CRITICAL,
                            Rule.STALL: Severity.CRITICAL}
    press = config.machine_thresholds("press-01", "line-a")
    assert (press.long_stop_after, press.disabled) == (300.0, frozenset({Rule.STALL}))
    assert press.severity[Rule.STALL] is Severity.INFO
    loose = config.machine_thresholds("robot-01", None)
    assert (loose.long_stop_after, loose.stall_min) == (1200.0, 120.0)
    assert config.escalation.period == 1200.0


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("machines_default: {long_stop_afer: 60}", "did you mean 'long_stop_after'?"),
    ("machines_default: {long_stop_after: -5}", "e.g. 600"),
    ("machines: {cnc-01: {disabled: [gateway_offline]}}", "gateway_offline cannot be set per machine or line"),
    ("lines: {line-a: {severity: {clock_skew: critical}}}", "clock_skew cannot be set per machine or line"),
    ("gateways: {disabled: [stall]}", "stall is a machine rule: disable it under machines_default"),
    ("severity: {fault: urgent}", "severity.fault (line 1) has the bad value 'urgent': Input should be 'info'"),
    ("machines_default: {long_stop_states: [idle, asleep]}", "long_stop_states[1] (line 1) has the bad value 'asleep'"),
    ("escalation: {after: 0}", "seconds an alert may stay unacknowledged"),
])
def test_configuration_errors_say_what_to_fix(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml_model(AlertsConfig, yaml_text, source="central.yaml")
    assert expected in str(info.value)


def test_lines_and_machines_must_exist_in_the_plant() -> None:
    config = parse_yaml_model(AlertsConfig, "lines: {line-z: {}}\nmachines: {cnc-01: {}, cnc-99: {}}")
    assert config.unknown_references(["line-a"], ["cnc-01"]) == [
        "alerts.lines.line-z: there is no line 'line-z' (configured: line-a)",
        "alerts.machines.cnc-99: there is no machine 'cnc-99' (configured: cnc-01)",
    ]


# --------------------------------------------------------------------------- webhook targets
def notification(kind: TransitionKind = TransitionKind.OPENED, severity: Severity = Severity.WARNING,
                 level: int = 0) -> Notification:
    return Notification(
        id=f"abc.0-{kind}", alert_id="abc", kind=kind, at=1.0, rule=Rule.LONG_STOP, subject="cnc-01",
        severity=severity, status=AlertStatus.OPEN, level=level, message=Texts("停机", "stopped"), details={},
        since=None, opened_at=1.0,
    )


def target(yaml_text: str) -> WebhookTarget:
    return parse_yaml_model(WebhookTarget, yaml_text)


def test_targets_pick_what_they_receive() -> None:
    everything = target("{name: all, kind: generic, url: 'http://127.0.0.1:9/hook'}")
    leaders = target("{name: leaders, kind: wecom, url: 'https://qyapi.weixin.qq.com/x?key=k', min_level: 1, "
                     "min_severity: warning, events: [escalated, resolved]}")
    assert wants(everything, notification()) and wants(everything, notification(severity=Severity.INFO))
    assert not wants(leaders, notification())  # level 0
    assert wants(leaders, notification(TransitionKind.ESCALATED, level=1))
    assert not wants(leaders, notification(TransitionKind.ESCALATED, Severity.INFO, level=1))
    assert not wants(leaders, notification(TransitionKind.ACKNOWLEDGED, level=2))  # not in its events
    assert wants(leaders, notification(TransitionKind.RESOLVED, level=2))


def test_build_request_dispatches_on_kind_and_signs_with_the_secret() -> None:
    tz = ZoneInfo("UTC")
    n = notification()
    ding = target("{name: d, kind: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=t', "
                  "secret: SECxyz, lang: en}")
    request = build_request(ding, n, now=100.0, tz=tz)
    assert "&timestamp=100000&sign=" in request.url and request.json()["markdown"]["title"].startswith("[warning]")
    feishu = target("{name: f, kind: feishu, url: 'https://open.feishu.cn/x', secret: s, feishu_card: false}")
    body = build_request(feishu, n, now=100.0, tz=tz).json()
    assert body["msg_type"] == "post" and body["timestamp"] == "100" and "zh_cn" in body["content"]["post"]
    wecom = target("{name: w, kind: wecom, url: 'https://qyapi.weixin.qq.com/x?key=k'}")
    assert build_request(wecom, n, now=100.0, tz=tz).json()["msgtype"] == "markdown"
    generic = target("{name: g, kind: generic, url: 'http://127.0.0.1:9/hook', secret: s}")
    headers = build_request(generic, n, now=100.0, tz=tz, site="s1").headers
    assert headers["X-Plantpulse-Timestamp"] == "100" and headers["Idempotency-Key"] == n.id
    assert ding.redacted_url() == "https://oapi.dingtalk.com/…"


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("{name: w, kind: wecom, url: 'https://qyapi.weixin.qq.com/x?key=k', secret: s}", "WeCom group robots have no"),
    ("{name: w, kind: slack, url: 'https://x'}", "generic, wecom, dingtalk or feishu"),
    ("{name: w, kind: generic, url: 'ftp://x/y?token=hidden'}", "must be an http:// or https:// URL"),
    ("{name: w, kind: generic, url: 'https://x', events: [cleared]}", "cleared never notifies"),
    ("{name: w, kind: dingtalk, url: 'https://x?access_token=hidden', max_per_minute: 0}",
     "webhook w: max_per_minute must be at least 1"),
    ("{name: w, kind: generic, url: 'https://x', max_per_minute: lots}", "max_per_minute"),
])
def test_target_errors_say_what_to_fix_without_printing_secrets(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml_model(WebhookTarget, yaml_text)
    assert expected in str(info.value)
    assert "hidden" not in str(info.value)


def test_robots_are_limited_to_their_rate_by_default_generic_receivers_are_not() -> None:
    url = "url: 'https://robot.example/x'"
    assert [target(f"{{name: r, kind: {kind}, {url}}}").max_per_minute
            for kind in ("wecom", "dingtalk", "feishu", "generic")] == [20, 20, 20, None]
    assert target(f"{{name: r, kind: feishu, {url}, max_per_minute: 90}}").max_per_minute == 90
    assert target(f"{{name: r, kind: wecom, {url}, max_per_minute: null}}").max_per_minute is None  # said so
    assert target(f"{{name: r, kind: generic, {url}, max_per_minute: 100}}").max_per_minute == 100
    made = WebhookTarget.model_validate({"name": "r", "kind": WebhookKind.DINGTALK, "url": "https://robot.example/x"})
    assert made.max_per_minute == 20


def test_secrets_do_not_show_in_the_target_repr() -> None:
    ding = target("{name: d, kind: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=tok', "
                  "secret: SECxyz}")
    assert "SECxyz" not in repr(ding) and "tok" not in repr(ding)


def test_webhook_secrets_come_from_the_environment_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_HOOK_URL", "https://oapi.dingtalk.com/robot/send?access_token=abc")
    secret = tmp_path / "secret"
    secret.write_text("SECxyz\n")
    target = WebhookTarget.model_validate(
        {"name": "leaders", "kind": "dingtalk", "url_env": "PP_HOOK_URL", "secret_file": str(secret)}
    )
    assert target.url.get_secret_value().endswith("access_token=abc")
    assert target.secret is not None and target.secret.get_secret_value() == "SECxyz"
    with pytest.raises(ValueError, match="PP_HOOK_MISSING"):
        WebhookTarget.model_validate({"name": "x", "kind": "generic", "url_env": "PP_HOOK_MISSING"})
    with pytest.raises(ValueError, match="give one of url"):
        WebhookTarget.model_validate({"name": "x", "kind": "generic", "url": "https://a/b", "url_env": "PP_HOOK_URL"})
