"""Central's live state as API answers: the same view for the routes and the live stream.

Field lists are not copied by hand: a view takes every field its schema names from the internal
record (a machine's status, a gateway's row) and adds what lives elsewhere (metadata from the
catalog, sequencing progress from the gateway's sequencer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from central.alerts.alert import Alert
from central.api.schemas import GatewayPublic, MachineOperation, MachinePublic
from central.ingest.live import LiveState
from central.progress.machines import Catalog
from central.progress.status import MachineStatus

_ALERT: TypeAdapter[Alert] = TypeAdapter(Alert)


def alert_view(alert: Alert) -> dict[str, Any]:
    """An alert as the API and the live stream show it (JSON-ready)."""
    data: dict[str, Any] = _ALERT.dump_python(alert, mode="json")
    data["active"] = alert.active
    return data


# the fields a machine's public view takes by name from its status (computed once: per request it is a copy)
_STATUS_FIELDS = tuple(name for name in MachinePublic.model_fields
                       if name in MachineStatus.__dataclass_fields__ and name not in ("configured", "fault_text"))


class LiveViews:
    """Renders machines, gateways and alerts from the live state (what the stream hub calls too)."""

    def __init__(self, live: LiveState, catalog: Catalog,
                 operation: Callable[[str], dict[str, Any] | None] | None = None) -> None:
        self.live = live
        self.catalog = catalog
        self.operation = operation  # the work-order operation a machine runs (central/orders/projector.py)
        self._cache: dict[str, tuple[MachineStatus, str | None, MachinePublic]] = {}  # machine -> last view

    def machine(self, machine_id: str) -> MachinePublic | None:
        view = self._machine(machine_id)
        op = self.operation(machine_id) if self.operation is not None and view is not None else None
        if view is None or op is None:
            return view
        return view.model_copy(update={"operation": MachineOperation(**op)})

    def _machine(self, machine_id: str) -> MachinePublic | None:
        st = self.live.statuses.get(machine_id)
        if st is None:
            return None
        gateway_id = self.live.machine_gateway.get(machine_id)
        cached = self._cache.get(machine_id)
        if cached is not None and cached[0] is st and cached[1] == gateway_id:
            return cached[2]  # statuses are immutable: the same object renders the same view
        info = self.catalog.machine(machine_id)
        view = MachinePublic(
            **{name: getattr(st, name) for name in _STATUS_FIELDS},
            id=machine_id, name=info.name, line=info.line, work_centre=info.work_centre,
            ideal_cycle_time=info.ideal_cycle_time, configured=st.configured and info.configured,
            fault_text=st.fault_text.model_dump() if st.fault_text else None, gateway_id=gateway_id,
        )
        self._cache[machine_id] = (st, gateway_id, view)
        return view

    def machines(self) -> list[MachinePublic]:
        return [v for mid in sorted(self.live.statuses) if (v := self.machine(mid)) is not None]

    def gateway(self, edge_id: str) -> GatewayPublic | None:
        gw = self.live.gateways.get(edge_id)
        if gw is None:
            return None
        seq = self.live.sequencers.get(edge_id)
        progress = seq.progress() if seq is not None else None
        return GatewayPublic.model_validate({
            **gw.model_dump(),
            "applied_seq": progress.applied if progress else None,
            "held_events": progress.held if progress else 0,
            "missing": [[a, b] for a, b in progress.missing] if progress else [],
        })

    def gateways(self) -> list[GatewayPublic]:
        return [v for gid in sorted(self.live.gateways) if (v := self.gateway(gid)) is not None]

    # ----------------------------------------------------------------- for the stream hub (JSON-ready)
    def machine_json(self, machine_id: str) -> dict[str, Any] | None:
        view = self.machine(machine_id)
        return view.model_dump(mode="json") if view else None

    def gateway_json(self, edge_id: str) -> dict[str, Any] | None:
        view = self.gateway(edge_id)
        return view.model_dump(mode="json") if view else None

    def alert_json(self, alert: Alert) -> dict[str, Any]:
        return alert_view(alert)

    def everything(self) -> dict[str, Any]:
        return {
            "machines": [m.model_dump(mode="json") for m in self.machines()],
            "gateways": [g.model_dump(mode="json") for g in self.gateways()],
        }
