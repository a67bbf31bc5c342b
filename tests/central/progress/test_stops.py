"""Stop reasons people give: which idle time each explains, idempotency by client id, OEE losses by cause."""

from __future__ import annotations

import pytest

from central.progress.downtime import DowntimeReport
from central.progress.oee import PartsAt, oee
from central.progress.stops import (
    StopCause,
    StopConflictError,
    StopReason,
    StopReasonIn,
    accept_stop,
    explain_idle,
    with_reasons,
)
from central.progress.timeline import StateInterval
from plantpulse.protocol.models import MachineState

T0 = 1_796_000_000.0
R, IDLE, F = MachineState.RUNNING, MachineState.IDLE, MachineState.FAULT


def iv(state: MachineState, a: float, b: float) -> StateInterval:
    return StateInterval("m1", state, T0 + a, T0 + b)


def reason(cause: StopCause, start: float, end: float | None, at: float, cid: str = "x") -> StopReason:
    content = StopReasonIn(client_id=cid, operator="op7", machine="m1", reason=cause, start=T0 + start,
                           end=None if end is None else T0 + end)
    return accept_stop(None, content, at=T0 + at)[0]


DAY = [iv(R, 0, 1000), iv(IDLE, 1000, 1060), iv(R, 1060, 2000), iv(IDLE, 2000, 3000), iv(F, 3000, 3600),
       iv(IDLE, 3600, 4000), iv(R, 4000, 5000)]
ALL = [(T0, T0 + 5000)]


def test_an_open_reason_explains_idle_until_the_machine_runs_again_never_faults_or_micro_stops() -> None:
    # given at 2100 for the stop that began at 1000? no: from 2000, open: idle 2000-3000 and 3600-4000
    explained = explain_idle(DAY, [reason(StopCause.MATERIAL, 2000, None, 2100)], ALL, T0, T0 + 5000,
                             micro_stop_threshold=120)
    assert explained == {StopCause.MATERIAL: 1400.0}  # the fault in between stays a fault
    early = explain_idle(DAY, [reason(StopCause.NO_OPERATOR, 900, None, 1010)], ALL, T0, T0 + 5000,
                         micro_stop_threshold=120)
    assert early == {}  # 1000-1060 is a micro-stop; the reason ends when the machine runs at 1060


def test_later_reasons_win_and_only_planned_time_counts() -> None:
    reasons = [reason(StopCause.MATERIAL, 2000, 3000, 2100, "a"), reason(StopCause.QUALITY_HOLD, 2500, 3000, 2600, "b")]
    planned = [(T0, T0 + 2800)]
    explained = explain_idle(DAY, reasons, planned, T0, T0 + 5000, micro_stop_threshold=120)
    assert explained == {StopCause.MATERIAL: 500.0, StopCause.QUALITY_HOLD: 300.0}


def test_a_client_id_is_idempotent_and_a_reuse_with_other_content_is_refused() -> None:
    body = StopReasonIn(client_id="c1", operator="op7", machine="m1", reason=StopCause.TOOLING)
    first, new = accept_stop(None, body, at=T0)
    assert new and first.start == T0 and first.end is None
    again, new = accept_stop(first, body, at=T0 + 5)
    assert not new and again is first
    with pytest.raises(StopConflictError):
        accept_stop(first, body.model_copy(update={"reason": StopCause.MATERIAL}), at=T0 + 5)
    with pytest.raises(ValueError, match="note"):
        StopReasonIn(client_id="c2", operator="op7", machine="m1", reason=StopCause.OTHER)


def test_oee_losses_split_idle_by_cause_without_changing_availability() -> None:
    report = DowntimeReport("m1", 0, 1000, planned=1000, running=600, idle=300, fault={101: 100.0})
    base = oee(report, [PartsAt(10.0, 50, 0)])
    split = with_reasons(base, {StopCause.MATERIAL: 200.0, StopCause.NO_OPERATOR: 150.0})
    assert split.losses["material"] == 200 and split.losses["no_operator"] == 100 and split.losses["idle"] == 0
    assert split.availability == base.availability and split.availability_loss == base.availability_loss
