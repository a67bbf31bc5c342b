"""The chaos run of issue 11, full form: counts, jobs, downtime and alerts through everything that breaks.

``python -m bench chaos [--seed N] [--machines N] [--minutes M] [--short]`` (or ``python -m
bench.chaos``) runs a seeded plan (tests/chaos/plan.py): by default 20 machines of both protocols
through 2 gateways -> mosquitto -> central for 20 minutes while the broker stops 3 times (once
losing its persistence), each gateway is killed with SIGKILL twice, central twice, the OPC UA
servers restart, PLCs refuse and hang, power-cycle, get their counters preset and change jobs.
Then it prints, per machine, the ground truth against what central counted, the parts of flagged
events, the worst transition delay against the tolerance, and faults against alerts
(tests/chaos/checks.py), and exits 1 when a check failed. ``--short`` uses the CI form's
intensity (once each). ``--minutes`` are wall minutes of the script; the plant runs ten times faster.
The baseline in the table is the ground truth itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench._procs import exit_on_sigterm, machine, row
from tests.chaos.checks import check_machine
from tests.chaos.plan import SPEED, Intensity, make_plan
from tests.chaos.run import Outcome, kept_plan, recheck, run_chaos


def report(outcome: Outcome) -> list[str]:
    """The report's lines: the plan, a table per machine, then every failure."""
    plan = outcome.plan
    lines = [
        f"seed {plan.seed}, {len(plan.machines)} machines "
        f"({sum(m.protocol == 'opcua' for m in plan.machines)} OPC UA), {plan.duration / 60:.1f} wall minutes of "
        f"chaos = {plan.duration * SPEED / 60:.0f} plant minutes at x{SPEED:g}; {len(plan.actions)} actions: "
        + ", ".join(f"{plan.count(k)} {k}" for k in ("broker_stop", "gateway_kill", "central_kill", "restart",
                                                     "fault", "unreachable", "power_cycle", "preset", "job")),
        f"wall time {outcome.wall_seconds:.0f} s; actions the plant refused: {len(outcome.errors)}",
    ]
    widths = (6, 6, 15, 15, 9, 11, 11, 13, 9)
    lines.append(row(["machine", "proto", "truth g+s", "counted g+s", "flagged", "flag parts", "worst/tol s",
                      "faults obs/all", "alerts"], widths))
    for v in outcome.verdicts:
        spec = plan.machine(v.machine_id)
        lines.append(row([
            v.machine_id, f"{spec.protocol[:2]}{spec.bits}", f"{v.truth[0]}+{v.truth[1]}",
            f"{v.counted[0]}+{v.counted[1]}", str(len(v.flagged)), "{}+{}".format(*v.flagged_parts),
            f"{v.worst_transition:+.2f}/{v.tolerance:.2f}",
            f"{v.observable_faults}/{v.faults}", str(v.alerts),
        ], widths) + ("" if v.ok else "  FAILED"))
    total_truth = sum(sum(v.truth) for v in outcome.verdicts)
    total_counted = sum(sum(v.counted) for v in outcome.verdicts)
    exact = sum(1 for v in outcome.verdicts if v.truth == v.counted)
    lines.append(f"parts: truth {total_truth}, counted {total_counted} ({total_counted / max(1, total_truth):.4f}"
                 f" x truth); machines exact {exact}/{len(outcome.verdicts)}; flagged events "
                 f"{sum(len(v.flagged) for v in outcome.verdicts)}")
    for v in outcome.verdicts:
        for f in v.flagged:
            lines.append(f"  flagged {v.machine_id}: {f.describe()}")
        for j in v.jobs_off:
            lines.append(f"  job off (explained by flags) {v.machine_id}: {j}")
    failures = outcome.failures()
    lines.append("checks: " + ("all passed" if not failures else f"{len(failures)} FAILED"))
    lines += [f"  FAIL {f}" for f in failures]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261203, help="the plan's seed (default 20261203)")
    parser.add_argument("--machines", type=int, default=20, help="machines (default 20)")
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="wall minutes of chaos (default 20; the plant runs x10: 200 plant minutes)")
    parser.add_argument("--short", action="store_true", help="the CI form's intensity: each disruption once")
    parser.add_argument("--quick", action="store_true", help="a 9-machine, 1.5-minute smoke run (--short)")
    parser.add_argument("--keep", type=Path, help="keep the processes' folders and logs here")
    parser.add_argument("--recheck", type=Path, metavar="DIR",
                        help="run the checks again on a run kept with --keep (no processes started)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.recheck:
        kept = kept_plan(args.recheck)
        runs, seq_failures = recheck(kept, args.recheck)
        again = Outcome(kept, [check_machine(r) for r in runs], seq_failures, (0.0, 0.0), 0.0)
        print("\n".join(report(again)))
        return 0 if again.ok else 1
    if args.quick:
        args.machines, args.minutes, args.short = 9, 1.5, True
    plan = make_plan(args.seed, args.machines, args.minutes * 60.0, Intensity.short() if args.short else None)
    print(f"chaos benchmark on {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        outcome = run_chaos(plan, root, say=lambda text: print(text, flush=True))
    for line in report(outcome):
        print(line)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
