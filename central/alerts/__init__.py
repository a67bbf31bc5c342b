"""Failure alerts, the pure parts (docs/alerts.md): no I/O, time always passed in.

* ``rules`` — facts (machine status, gateway, data gaps) and ``now`` -> the conditions true now;
* ``lifecycle`` — ``reconcile`` conditions with the active alerts; ``acknowledge``, ``resolve``;
* ``alert`` / ``notifications`` — the alert with its history; the notification record (outbox);
* ``config`` — thresholds per machine or line, severities, escalation;
* ``notify_format`` / ``signing`` / ``targets`` — the requests for a generic webhook, WeCom,
  DingTalk and Feishu robots, and the MQTT payload.
"""
