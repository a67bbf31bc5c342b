"""``/api/v1/alerts``: list alerts, and acknowledge or resolve one (write key required)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from central.alerts.alert import AlertError
from central.alerts.engine import UnknownAlertError
from central.api.deps import CentralDep, Writer
from central.api.views import alert_view

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(None, max_length=100, description="who acts (default: the API key's name), e.g. 张工")
    note: str | None = Field(None, max_length=1000, description="what was found or done")


@router.get("", summary="Alerts, newest first, with filters")
async def list_alerts(
    central: CentralDep,
    status: Annotated[Literal["open", "acknowledged", "resolved", "active"] | None, Query()] = None,
    rule: Annotated[str | None, Query(description="fault, long_stop, stall, gateway_offline, data_gap, ...")] = None,
    subject: Annotated[str | None, Query(description="machine id, gateway id or gap id")] = None,
    since: Annotated[float | None, Query(description="changed at or after (Unix seconds)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    alerts = await central.store.alerts(status=status, rule=rule, subject=subject, since=since, limit=limit,
                                        offset=offset)
    return {"server_time": central.clock(), "alerts": [alert_view(a) for a in alerts]}


@router.get("/{alert_id}", summary="One alert with its full history")
async def get_alert(alert_id: str, central: CentralDep) -> dict[str, Any]:
    alert = await central.store.alert(alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert '{alert_id}'")
    return alert_view(alert)


async def _act(central: CentralDep, alert_id: str, action: str, who: str, body: AlertAction | None) -> dict[str, Any]:
    try:
        alert = await central.alerts.act(alert_id, action, by=(body.by if body and body.by else who),
                                 note=body.note if body else None, live=central.live)
    except UnknownAlertError:
        raise HTTPException(404, f"no alert '{alert_id}'") from None
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None
    central.hub.publish_alerts([alert])
    central.sender.wake()
    return alert_view(alert)


@router.post("/{alert_id}/ack", summary="Acknowledge: someone takes it on (stops escalation)")
async def ack(alert_id: str, central: CentralDep, who: Writer, body: AlertAction | None = None) -> dict[str, Any]:
    return await _act(central, alert_id, "ack", who, body)


@router.post("/{alert_id}/resolve", summary="Resolve by hand")
async def resolve(alert_id: str, central: CentralDep, who: Writer, body: AlertAction | None = None) -> dict[str, Any]:
    return await _act(central, alert_id, "resolve", who, body)
