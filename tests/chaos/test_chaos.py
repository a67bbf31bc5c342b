"""The chaos run of issue 11, shortened for CI (about 100 s): the full form is ``python -m bench chaos``.

Nine machines (six Modbus, three OPC UA; 16- and 32-bit counters, half near the wrap; two pairs of
Modbus machines behind shared ports, two OPC UA machines behind one server) through two real
gateways -> a test mosquitto -> a real central, for 75 s of a seeded script: the broker stops twice
(once losing its persistence), each gateway and central are killed with SIGKILL once, the OPC UA
server and a shared Modbus port restart, and every machine gets faults, refusing and hanging
PLCs, power cycles (also while unreachable), presets (also to just below the wrap) and job changes
(also while its gateway is down). tests/chaos/checks.py says what must hold; docs/chaos.md why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import report
from tests.chaos.plan import Intensity, make_plan
from tests.chaos.run import run_chaos

SEED = 20261203
MACHINES = 9
SECONDS = 75.0


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_chaos_run_counts_jobs_downtime_and_alerts_match_the_ground_truth(tmp_path: Path) -> None:
    plan = make_plan(SEED, MACHINES, SECONDS, Intensity.short())
    assert {m.protocol for m in plan.machines} == {"modbus", "opcua"}
    assert {m.bits for m in plan.machines} == {16, 32}
    assert plan.count("broker_stop") == 2 and plan.count("gateway_kill") == 2 and plan.count("central_kill") == 1
    outcome = run_chaos(plan, tmp_path, say=lambda text: None)
    lines = report(outcome)
    print("\n".join(lines))  # shown with -s or -rP: the same report as the benchmark's
    assert outcome.ok, "\n".join(lines)
    assert not outcome.errors, outcome.errors
