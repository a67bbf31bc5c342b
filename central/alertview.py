"""An alert as the API and the live stream show it (JSON-ready), the same shape everywhere."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from central.alerts.alert import Alert

_ALERT: TypeAdapter[Alert] = TypeAdapter(Alert)


def alert_view(alert: Alert) -> dict[str, Any]:
    data: dict[str, Any] = _ALERT.dump_python(alert, mode="json")
    data["active"] = alert.active
    return data
