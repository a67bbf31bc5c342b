"""Turn central's live state into API answers (used by the routes and the stream alike)."""

from __future__ import annotations

from typing import Any

from central.api.schemas import FaultTextPublic, GatewayPublic, MachinePublic
from central.runtime import Central


def machine_view(central: Central, machine_id: str) -> MachinePublic | None:
    live = central.ingest.live
    st = live.statuses.get(machine_id)
    if st is None:
        return None
    info = central.catalog.machine(machine_id)
    return MachinePublic(
        id=machine_id, name=info.name, line=info.line, work_centre=info.work_centre,
        ideal_cycle_time=info.ideal_cycle_time, configured=st.configured and info.configured,
        state=st.state, since=st.since, fault_code=st.fault_code,
        fault_text=FaultTextPublic(zh=st.fault_text.zh, en=st.fault_text.en) if st.fault_text else None,
        job=st.job, reason=st.reason, uncertain=st.uncertain, last_part_at=st.last_part_at,
        good_total=st.good_total, scrap_total=st.scrap_total, good_today=st.good_today, scrap_today=st.scrap_today,
        gateway_id=live.machine_gateway.get(machine_id), gateway_online=st.gateway_online,
        gateway_skew=st.gateway_skew, last_event_at=st.last_event_at,
    )


def machine_views(central: Central) -> list[MachinePublic]:
    out = []
    for mid in sorted(central.ingest.live.statuses):
        view = machine_view(central, mid)
        if view is not None:
            out.append(view)
    return out


def gateway_view(central: Central, edge_id: str) -> GatewayPublic | None:
    live = central.ingest.live
    gw = live.gateways.get(edge_id)
    if gw is None:
        return None
    seq = live.sequencers.get(edge_id)
    applied = held = None
    missing: list[list[int]] = []
    if seq is not None and seq.current is not None:
        st = seq.epochs[seq.current]
        applied = st.contiguous()
        held = len(st.held)
        missing = [[a, b] for a, b in seq.missing(seq.current)]
    return GatewayPublic(
        edge_id=gw.edge_id, site=gw.site, online=gw.online, changed_at=gw.changed_at, last_seen=gw.last_seen,
        birth=gw.birth, epoch=gw.epoch, version=gw.version, config_hash=gw.config_hash, machines=gw.machines,
        applied_seq=applied, latest_seq=gw.latest_seq, oldest_seq=gw.oldest_seq, held_events=held or 0,
        missing=missing, buffer_events=gw.buffer_events, buffer_bytes=gw.buffer_bytes,
        oldest_unconfirmed_age=gw.oldest_unconfirmed_age, coalesced_total=gw.coalesced_total,
        dropped_total=gw.dropped_total, skew=gw.skew, health_at=gw.health_at,
    )


def gateway_views(central: Central) -> list[GatewayPublic]:
    return [v for gid in sorted(central.ingest.live.gateways) if (v := gateway_view(central, gid)) is not None]


def attach_stream(central: Central) -> None:
    """Let the stream hub render machines and gateways with the same views as the routes."""
    hub = central.hub

    def machine(mid: str) -> dict[str, Any] | None:
        view = machine_view(central, mid)
        return view.model_dump(mode="json") if view else None

    def gateway(gid: str) -> dict[str, Any] | None:
        view = gateway_view(central, gid)
        return view.model_dump(mode="json") if view else None

    def everything() -> dict[str, Any]:
        return {
            "machines": [m.model_dump(mode="json") for m in machine_views(central)],
            "gateways": [g.model_dump(mode="json") for g in gateway_views(central)],
        }

    hub.render_machine, hub.render_gateway, hub.render_all = machine, gateway, everything
