"""Order alerts on central's MQTT alert stream: an order id may hold characters a topic cannot (issue 13)."""

from __future__ import annotations

from datetime import UTC

from central.alerts.conditions import Condition, Rule, Severity, Texts
from central.alerts.lifecycle import reconcile
from central.alerts.notify_format import View, mqtt_message


def test_an_order_id_with_mqtt_wildcards_gives_a_valid_topic() -> None:
    found = Condition(Rule.ORDER_AT_RISK, "SO#12+b", Severity.WARNING, Texts("风险", "at risk"), since=1.0,
                      details={"cause": "fault", "machine": "cnc-01", "operation": 10})
    (n,) = reconcile([], [found], 2.0).notifications
    topic, payload = mqtt_message(n, "plant-a", View("en", UTC))
    assert topic == "plantpulse/v1/plant-a/_central/alerts/order_at_risk/SO_12_b"
    assert b'"subject":"SO#12+b"' in payload and b'"subject_kind":"order"' in payload
