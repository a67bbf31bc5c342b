"""What ingest keeps in memory between rounds, restored from the store at start.

Machine statuses and gateway rows are the live view (the API and the stream read them without
touching the store); sequencers hold each gateway's settled seq ranges. Everything here is
rebuilt from the store after a restart, so losing the process loses nothing but held events,
which their gateways send again because they were never confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from central.ingest.config import IngestConfig
from central.progress.machines import Catalog
from central.progress.skew import SkewEstimator
from central.progress.status import MachineStatus, new_status, set_gateway_online, set_gateway_skew
from central.store.base import Loaded
from central.store.records import EpochRow, GatewayRow
from plantpulse.protocol.ranges import RangeSet
from plantpulse.protocol.sequencer import GatewaySequencer


@dataclass
class Counters:
    """Monotonic counters for /metrics."""

    messages: int = 0
    events_applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    rejected_events: int = 0  # events refused one by one (their seqs settled as ``rejected`` gaps)
    unannounced_held: int = 0  # events messages held because their epoch was not announced yet
    implausible_counts: int = 0  # count events with more parts than the ideal cycle time allows
    failed_rounds: int = 0  # rounds that raised and were applied again message by message
    gaps: int = 0
    replays_asked: int = 0
    stale_wills: int = 0
    site_conflicts: int = 0  # messages of another site than central's (a misrouted subscription; dead-lettered)
    rounds: int = 0
    late_events: int = 0
    uncertain_events: int = 0
    historic_events: int = 0
    commit_seconds: float = 0.0
    hook_errors: int = 0
    purged: int = 0
    last_apply_lag: float = 0.0  # seconds between receiving a message and committing it


@dataclass
class LiveState:
    cfg: IngestConfig
    catalog: Catalog
    statuses: dict[str, MachineStatus] = field(default_factory=dict)
    gateways: dict[str, GatewayRow] = field(default_factory=dict)
    sequencers: dict[str, GatewaySequencer] = field(default_factory=dict)
    machine_gateway: dict[str, str] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    # configured machines are listed before their first event (one process); an ingest worker lists
    # only the machines of the gateways it owns
    list_configured: bool = True
    _skews: dict[str, SkewEstimator] = field(default_factory=dict)

    def reload(self, loaded: Loaded) -> None:
        """Forget everything in memory (a failed round's half-applied changes) and restore from the store."""
        self.statuses, self.gateways, self.sequencers, self.machine_gateway = {}, {}, {}, {}
        self._skews.clear()
        self.restore(loaded)

    def restore(self, loaded: Loaded) -> None:
        self.statuses = dict(loaded.statuses)
        self.gateways = dict(loaded.gateways)
        for edge_id, gw in self.gateways.items():
            for machine_id in gw.machines:
                self.machine_gateway.setdefault(machine_id, edge_id)
        for row in loaded.epochs:
            self.sequencer(row.edge_id).restore(row.epoch, RangeSet(row.settled), current=row.current)
        self.counters.dead_letters = loaded.dead_letters
        self.counters.gaps = loaded.gaps
        for mid in self.catalog.configured_ids() if self.list_configured else ():
            self.statuses.setdefault(mid, new_status(self.catalog.machine(mid)))

    def sequencer(self, edge_id: str) -> GatewaySequencer:
        seq = self.sequencers.get(edge_id)
        if seq is None:
            seq = self.sequencers[edge_id] = GatewaySequencer(
                edge_id, hold_max_events=self.cfg.hold_max_events, hold_max_age=self.cfg.hold_max_age,
                replay_retry=self.cfg.replay_retry,
            )
        return seq

    def gateway(self, edge_id: str, site: str) -> GatewayRow:
        gw = self.gateways.get(edge_id)
        if gw is None:
            gw = self.gateways[edge_id] = GatewayRow(edge_id=edge_id, site=site)
        gw.site = site
        return gw

    def status(self, machine_id: str, edge_id: str | None) -> MachineStatus:
        """The machine's status, created (flagged if not configured) the first time it is seen."""
        st = self.statuses.get(machine_id)
        if st is None:
            st = new_status(self.catalog.machine(machine_id))
        if edge_id is not None and self.machine_gateway.get(machine_id) != edge_id:
            self.machine_gateway[machine_id] = edge_id
            gw = self.gateways.get(edge_id)
            if gw is not None:
                if gw.online is not None:
                    st = set_gateway_online(st, gw.online, gw.changed_at or 0.0)
                st = set_gateway_skew(st, gw.skew)
        return st

    def machines_of(self, edge_id: str) -> list[str]:
        gw = self.gateways.get(edge_id)
        ids = set(gw.machines) if gw else set()
        ids.update(m for m, e in self.machine_gateway.items() if e == edge_id)
        return sorted(ids)

    def skew_sample(self, edge_id: str, ts: float, received_at: float) -> float | None:
        """Edge clock minus central clock from a health message (central/progress/skew.py)."""
        est = self._skews.get(edge_id)
        if est is None:
            gw = self.gateways.get(edge_id)
            est = self._skews[edge_id] = SkewEstimator(window=self.cfg.skew_samples,
                                                       estimate=gw.skew if gw is not None else None)
        return est.sample(ts, received_at)

    def epoch_rows(self, edge_id: str) -> list[EpochRow]:
        seq = self.sequencer(edge_id)
        return [
            EpochRow(edge_id, epoch, st.settled.ranges(), epoch == seq.current) for epoch, st in seq.epochs.items()
        ]

    def held_events(self) -> int:
        return sum(seq.held_events() for seq in self.sequencers.values())
