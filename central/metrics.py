"""Prometheus metrics of central, read from the live counters at every scrape (no global metric objects)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from central.alerts.sender import Sender
from central.ingest.service import IngestService


class _CentralCollector(Collector):
    def __init__(self, ingest: IngestService, sender: Sender | None = None) -> None:
        self.ingest = ingest
        self.sender = sender

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        ingest = self.ingest
        c = ingest.live.counters
        counters = {
            "messages": ("MQTT messages received", c.messages),
            "events_applied": ("events applied (ingest rate: rate() of this)", c.events_applied),
            "duplicates": ("events received again and recognised as applied", c.duplicates),
            "dead_letters": ("messages that could not be used (see /api/v1/dead-letters)", c.dead_letters),
            "gaps": ("data gaps recorded (see /api/v1/gaps)", c.gaps),
            "replays_asked": ("replay requests sent to gateways", c.replays_asked),
            "stale_wills": ("Last Wills ignored as older than the latest birth", c.stale_wills),
            "site_conflicts": ("messages of another site than the one central serves (a misrouted "
                               "subscription; dead-lettered)", c.site_conflicts),
            "late_events": ("state events applied after later ones (history spliced)", c.late_events),
            "uncertain_events": ("events applied past a bounded hold", c.uncertain_events),
            "historic_events": ("events older than the historic age when applied", c.historic_events),
            "rejected_events": ("events refused one by one (settled as rejected gaps)", c.rejected_events),
            "unannounced_messages": ("events messages of an epoch not announced yet (held, then applied or "
                                     "dead-lettered)", c.unannounced_held),
            "implausible_counts": ("count events with more parts than the ideal cycle time allows (applied, "
                                   "flagged)", c.implausible_counts),
            "failed_rounds": ("rounds that raised and were applied again message by message", c.failed_rounds),
            "hook_errors": ("alert evaluations that raised (the round was committed anyway)", c.hook_errors),
            "rounds": ("ingest transactions committed", c.rounds),
            "commit_seconds": ("seconds spent committing", c.commit_seconds),
        }
        signer = ingest.signer
        if signer is not None:
            counters["commands_signed"] = ("commands to gateways signed with their key", signer.signed)
            counters["commands_unsigned"] = ("commands sent unsigned: no usable key for the gateway", signer.unsigned)
        sender = self.sender
        if sender is not None:
            counters["notifications_sent"] = ("notifications delivered (MQTT and webhooks)", sender.sent)
            counters["notification_failures"] = ("notification attempts that failed (retried with backoff)",
                                                  sender.failures)
            counters["notification_throttled_waits"] = ("waits for a webhook's max_per_minute window while "
                                                        "notifications were due (the most urgent go first)",
                                                        sender.throttled)
        for name, (doc, value) in counters.items():
            family = CounterMetricFamily(f"plantpulse_central_{name}", doc)
            family.add_metric([], value)
            yield family
        gauges = {
            "apply_lag_seconds": ("receipt to commit of the latest round", c.last_apply_lag),
            "held_events": ("state events waiting behind a gap", ingest.live.held_events()),
            "broker_connected": ("1 when connected to the broker", 1.0 if ingest.connected else 0.0),
        }
        for name, (doc, value) in gauges.items():
            family_g = GaugeMetricFamily(f"plantpulse_central_{name}", doc)
            family_g.add_metric([], value)
            yield family_g
        online = GaugeMetricFamily(
            "plantpulse_central_gateway_online", "1 when the gateway is online", labels=["edge_id"]
        )
        skew = GaugeMetricFamily("plantpulse_central_gateway_skew_seconds", "gateway clock minus central clock",
                                 labels=["edge_id"])
        for edge_id, gw in ingest.live.gateways.items():
            online.add_metric([edge_id], 1.0 if gw.online else 0.0)
            if gw.skew is not None:
                skew.add_metric([edge_id], gw.skew)
        yield online
        yield skew


def registry(ingest: IngestService, sender: Sender | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_CentralCollector(ingest, sender))
    return reg
