"""Prometheus ``/metrics`` for the gateway: read from the live health at every scrape.

A custom collector (no module-level metric objects): the numbers are the same ones the health
message carries, so the two never disagree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.commands import CommandGate
from plantpulse.protocol.models import Health


class Observed(Protocol):
    """What the metrics read of the gateway (edge/gateway.py): its health, and the commands it refused."""

    def health(self) -> Health: ...

    @property
    def commands(self) -> CommandGate: ...

    @property
    def broker_connected(self) -> bool: ...


class _GatewayCollector(Collector):
    def __init__(self, gateway: Observed) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        health = self.gateway.health()
        labels = ["edge_id"]
        edge = [health.edge_id]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(f"plantpulse_edge_{name}", doc, labels=labels)
            g.add_metric(edge, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(f"plantpulse_edge_{name}", doc, labels=labels)
            c.add_metric(edge, value)
            return c

        yield gauge("buffer_events", "events held in the outbox", health.buffer_events)
        yield gauge("buffer_bytes", "bytes of events held in the outbox", health.buffer_bytes)
        yield gauge("oldest_unconfirmed_age_seconds", "age of the oldest unconfirmed event",
                    health.oldest_unconfirmed_age or 0.0)
        yield gauge("latest_seq", "latest sequence number assigned", health.latest_seq)
        yield gauge("confirmed_seq", "every seq up to this one is confirmed", health.confirmed_seq)
        yield gauge("clock_seconds", "the edge's clock (compare with yours for skew)", health.ts)
        yield gauge("broker_connected", "1 while the MQTT connection is up", float(self.gateway.broker_connected))
        yield counter("coalesced_events", "count events merged when the outbox was full", health.coalesced_total)
        yield counter("dropped_events", "events dropped when the outbox or disk was full", health.dropped_total)
        refused = CounterMetricFamily(
            "plantpulse_edge_commands_refused",
            "commands from the consumer that were ignored: invalid, unsigned, bad_signature, too_old",
            labels=["edge_id", "reason"],
        )
        for reason, n in self.gateway.commands.refused.items():
            refused.add_metric([health.edge_id, reason], n)
        yield refused
        per = ["edge_id", "machine_id"]
        reachable = GaugeMetricFamily("plantpulse_edge_machine_reachable", "1 if the PLC answers", labels=per)
        p50 = GaugeMetricFamily("plantpulse_edge_poll_latency_p50_ms", "poll latency median (ms)", labels=per)
        p99 = GaugeMetricFamily("plantpulse_edge_poll_latency_p99_ms", "poll latency 99th percentile (ms)", labels=per)
        reads = CounterMetricFamily("plantpulse_edge_reads", "reads of the PLC", labels=per)
        errors = CounterMetricFamily("plantpulse_edge_read_errors", "failed reads of the PLC", labels=per)
        for m in health.machines:
            key = [health.edge_id, m.machine_id]
            reachable.add_metric(key, 1.0 if m.reachable else 0.0)
            if m.poll_p50_ms is not None:
                p50.add_metric(key, m.poll_p50_ms)
            if m.poll_p99_ms is not None:
                p99.add_metric(key, m.poll_p99_ms)
            reads.add_metric(key, m.reads)
            errors.add_metric(key, m.read_errors)
        yield from (reachable, p50, p99, reads, errors)


class MetricsServer:
    def __init__(self, gateway: Observed) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_GatewayCollector(gateway))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, host, registry=self.registry)
        self.port = self._server.server_port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
