"""What a chaos run must prove, machine by machine (pure: values in, verdicts out; issue 11, "Proof").

Every check compares what central made of a run with the simulators' ground truth over the
window ``[start, end]`` (from the moment production resumed after every gateway's first read to
the moment the plant was paused at the end):

* **Totals**: good and scrap equal the truth, or differ only by what flagged count events can
  explain. A flagged event (``reset``, ``possibly_lost``, ``rebased``, ``job_from``,
  ``implausible``) can have missed at most the parts the truth has in its window, and can have
  counted at most its own parts that were never made; the difference must fit inside those sums,
  and every flagged event is listed with its parts. A machine without flagged events is exact.
* **Counts**: every unflagged count event has its own parts in the truth, in its window (a
  matching of counted to made parts): the totals' allowance cannot hide a part never made.
* **Jobs**: the same per job, with the flagged events that name the job (as ``job`` or
  ``job_from``; a span's parts are booked to neither) and the spans over a window in which the job
  ran (a job that came and went between two reads: "or a job in between", docs/edge.md rule 11).
* **Downtime**: time per state category equal to the truth within ``tolerance`` (one poll
  interval plus the gateway's measured poll p99) per transition, over the time the machine could
  be observed: neither unreachable in the truth nor ``offline`` in central (a gateway that cannot
  read a PLC is not a machine state).
* **Alerts**: every fault the gateway could observe (for at least two polls) opened exactly one
  ``fault`` alert; no alert without a fault.
* **Sequence numbers**: no (gateway, epoch, seq) applied twice in the store, no data gap.

Times are Unix seconds; intervals are ``(start, end)`` with ``start < end``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CATEGORIES = ("running", "idle", "setup", "fault", "maintenance")
EVENT_MARGIN = 0.3  # seconds: what a notification may lag a part beyond one poll interval
Window = tuple[float, float]


@dataclass(frozen=True)
class CountRow:
    """One applied count event as central's store holds it."""

    edge_id: str
    epoch: str
    seq: int
    start: float
    at: float
    good: int
    scrap: int
    job: str | None = None
    job_from: str | None = None
    reset: bool = False
    possibly_lost: bool = False
    rebased: bool = False
    implausible: bool = False

    @property
    def flags(self) -> list[str]:
        out = [name for name in ("reset", "possibly_lost", "rebased", "implausible") if getattr(self, name)]
        if self.job_from is not None:
            out.append(f"job_from={self.job_from}")
        return out


@dataclass(frozen=True)
class Part:
    ts: float
    good: bool
    job: str


@dataclass(frozen=True)
class Span:
    """A state interval (truth or central); ``end`` None: still open (cut at the window's end)."""

    start: float
    end: float | None
    state: str
    fault_code: int | None = None


@dataclass(frozen=True)
class AlertRow:
    id: str
    since: float | None
    episode: str | None


@dataclass(frozen=True)
class MachineRun:
    """Everything known of one machine after a run."""

    machine_id: str
    window: Window
    parts: Sequence[Part]
    truth: Sequence[Span]
    unreachable: Sequence[Window]  # when the truth says nobody could read the PLC
    counts: Sequence[CountRow]
    central: Sequence[Span]
    alerts: Sequence[AlertRow]
    poll: float  # the gateway's poll interval (OPC UA: publishing + sampling interval)
    poll_p99: float  # the gateway's measured poll latency p99, seconds

    @property
    def tolerance(self) -> float:
        return self.poll + self.poll_p99


@dataclass(frozen=True)
class Flagged:
    """A flagged count event with the truth's parts in its window."""

    row: CountRow
    truth_good: int
    truth_scrap: int

    def describe(self) -> str:
        return (f"{self.row.edge_id}#{self.row.seq} [{self.row.start:.2f}, {self.row.at:.2f}] counted "
                f"{self.row.good}+{self.row.scrap} (truth in window {self.truth_good}+{self.truth_scrap}) "
                f"job {self.row.job} {' '.join(self.row.flags)}")


@dataclass
class Verdict:
    """The outcome for one machine: figures for the report and what failed."""

    machine_id: str
    truth: tuple[int, int] = (0, 0)
    counted: tuple[int, int] = (0, 0)
    flagged: list[Flagged] = field(default_factory=list)
    jobs_off: list[str] = field(default_factory=list)  # jobs whose difference flagged events explain
    downtime: dict[str, tuple[float, float]] = field(default_factory=dict)  # category -> (truth, central)
    downtime_tolerance: float = 0.0
    tolerance: float = 0.0  # per transition: one poll interval plus the measured poll p99
    worst_transition: float = 0.0
    faults: int = 0
    observable_faults: int = 0
    alerts: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def flagged_parts(self) -> tuple[int, int]:
        return (sum(f.row.good for f in self.flagged), sum(f.row.scrap for f in self.flagged))


# ----------------------------------------------------------------- interval arithmetic
def clip(spans: Iterable[Window], window: Window) -> list[Window]:
    lo, hi = window
    return [(max(a, lo), min(b, hi)) for a, b in spans if min(b, hi) > max(a, lo)]


def subtract(windows: Iterable[Window], holes: Iterable[Window]) -> list[Window]:
    """``windows`` minus ``holes`` (both any order, overlapping allowed)."""
    out = sorted(windows)
    for h0, h1 in sorted(holes):
        nxt: list[Window] = []
        for a, b in out:
            if h1 <= a or h0 >= b:
                nxt.append((a, b))
                continue
            if a < h0:
                nxt.append((a, h0))
            if h1 < b:
                nxt.append((h1, b))
        out = nxt
    return out


def overlap(span: Window, windows: Iterable[Window]) -> float:
    a, b = span
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in windows)


def inside(t: float, windows: Iterable[Window]) -> bool:
    return any(a < t < b for a, b in windows)


def _bounded(spans: Sequence[Span], end: float) -> list[tuple[float, float, Span]]:
    return [(s.start, s.end if s.end is not None else end, s) for s in spans]


def observed(run: MachineRun) -> list[Window]:
    """When the machine could be watched: not unreachable in the truth, not offline in central."""
    offline = [(a, b) for a, b, s in _bounded(run.central, run.window[1]) if s.state == "offline"]
    return subtract([run.window], [*run.unreachable, *offline])


# ----------------------------------------------------------------- the checks
def _in(parts: Sequence[Part], a: float, b: float, job: str | None = None) -> tuple[int, int]:
    good = scrap = 0
    for p in parts:
        if a <= p.ts <= b and (job is None or p.job == job):
            good += p.good
            scrap += not p.good
    return good, scrap


def check_totals(run: MachineRun, verdict: Verdict) -> None:
    lo, hi = run.window
    made = [p for p in run.parts if lo < p.ts <= hi]
    truth = (sum(p.good for p in made), sum(not p.good for p in made))
    counted = (sum(r.good for r in run.counts), sum(r.scrap for r in run.counts))
    tol = run.tolerance
    flagged = []
    for row in run.counts:
        if row.flags:
            g, s = _in(made, row.start - tol, row.at + tol)
            flagged.append(Flagged(row, g, s))
    verdict.truth, verdict.counted, verdict.flagged = truth, counted, flagged
    for i, name in enumerate(("good", "scrap")):
        diff = counted[i] - truth[i]
        if diff == 0:
            continue
        missed = sum((f.truth_good, f.truth_scrap)[i] for f in flagged)
        extra = sum((f.row.good, f.row.scrap)[i] for f in flagged)
        if (diff < 0 and -diff > missed) or (diff > 0 and diff > extra):
            verdict.failures.append(
                f"{name}: counted {counted[i]}, truth {truth[i]} ({diff:+d}); flagged events explain at most "
                f"-{missed}/+{extra}")


def check_events(run: MachineRun, verdict: Verdict) -> None:
    """Every unflagged count has parts of its own in the truth, in its window (widened by the tolerance
    and a margin for notification delays): no two counts share a part, none counts a part never made.

    The totals can hide a count of a part never made behind the allowance of flagged events; this
    cannot. Matching counted parts to made parts, each count to the earliest free part in its
    window, taking counts by the end of their window, finds a matching whenever one exists.
    """
    pad = run.tolerance + EVENT_MARGIN
    for i, name in enumerate(("good", "scrap")):
        made = sorted(p.ts for p in run.parts if p.good == (i == 0))
        free = [True] * len(made)
        rows = sorted((r for r in run.counts if not r.flags and (r.good, r.scrap)[i]), key=lambda r: r.at)
        for r in rows:
            lo = bisect.bisect_left(made, r.start - pad)
            want = (r.good, r.scrap)[i]
            j = lo
            while want and j < len(made) and made[j] <= r.at + pad:
                if free[j]:
                    free[j] = False
                    want -= 1
                j += 1
            if want:
                verdict.failures.append(f"{name}: count {r.edge_id}#{r.seq} [{r.start:.2f}, {r.at:.2f}] has {want} "
                                        f"of its {(r.good, r.scrap)[i]} parts nowhere in the truth")


def check_jobs(run: MachineRun, verdict: Verdict) -> None:
    lo, hi = run.window
    made = [p for p in run.parts if lo < p.ts <= hi]
    tol = run.tolerance
    truth: dict[str, list[int]] = {}
    for p in made:
        truth.setdefault(p.job, [0, 0])[0 if p.good else 1] += 1
    booked: dict[str, list[int]] = {}
    for r in run.counts:
        if r.job_from is None and r.job is not None:
            row = booked.setdefault(r.job, [0, 0])
            row[0] += r.good
            row[1] += r.scrap
    for job in sorted(set(truth) | set(booked)):
        t, c = truth.get(job, [0, 0]), booked.get(job, [0, 0])
        if t == c:
            continue
        # flagged events naming the job, and spans over a window where it ran (a job in between)
        naming = [r for r in run.counts if r.flags and (job in (r.job, r.job_from) or (
            r.job_from is not None and any(_in(made, r.start - tol, r.at + tol, job))))]
        explained = True
        for i, name in enumerate(("good", "scrap")):
            diff = c[i] - t[i]
            missed = sum(_in(made, r.start - tol, r.at + tol, job)[i] + (
                (r.good, r.scrap)[i] if r.job_from is not None else 0) for r in naming)
            extra = sum((r.good, r.scrap)[i] for r in naming if r.job_from is None and r.job == job)
            if (diff < 0 and -diff > missed) or (diff > 0 and diff > extra):
                explained = False
                verdict.failures.append(f"job {job} {name}: booked {c[i]}, truth {t[i]} ({diff:+d}); flagged "
                                        f"events naming it explain at most -{missed}/+{extra}")
        if explained:
            verdict.jobs_off.append(f"{job}: booked {c[0]}+{c[1]}, truth {t[0]}+{t[1]} (flagged)")


def _time_in(spans: Sequence[Span], windows: Sequence[Window], end: float) -> dict[str, float]:
    out = dict.fromkeys(CATEGORIES, 0.0)
    for a, b, s in _bounded(spans, end):
        if s.state in out:
            out[s.state] += overlap((a, b), windows)
    return out


def _changes(spans: Sequence[Span]) -> list[tuple[float, str]]:
    """(time, new state) of every change of state (a job change in the same state is none)."""
    out: list[tuple[float, str]] = []
    last: str | None = None
    for s in sorted(spans, key=lambda s: s.start):
        if last is not None and s.state != last:
            out.append((s.start, s.state))
        last = s.state
    return out


def check_downtime(run: MachineRun, verdict: Verdict) -> None:
    windows = observed(run)
    end = run.window[1]
    truth = _time_in(run.truth, windows, end)
    central = _time_in(run.central, windows, end)
    changes = [(t, s) for t, s in _changes(run.truth) if inside(t, windows)]
    tolerance = len(changes) * run.tolerance + 0.05
    verdict.downtime = {c: (truth[c], central[c]) for c in CATEGORIES}
    verdict.downtime_tolerance = tolerance
    for c in CATEGORIES:
        if abs(truth[c] - central[c]) > tolerance:
            verdict.failures.append(f"{c}: central {central[c]:.2f} s, truth {truth[c]:.2f} s, tolerance "
                                    f"{tolerance:.2f} s ({len(changes)} transitions)")
    seen = _changes(run.central)
    worst = 0.0
    spans = _bounded(run.truth, end)
    for t, state in changes:
        # the delay of each change central could see: in sight around it, the new state lasting two polls
        held = min(next((b for a, b, s in spans if a == t), t), t + 2 * run.poll)
        if held < t + 2 * run.poll or overlap((t - run.tolerance, held), windows) < held - t + run.tolerance - 1e-6:
            continue
        near = [c - t for c, s in seen if s == state and -run.tolerance - 0.5 <= c - t <= 3.0]
        if near:
            worst = max(worst, min(near, key=abs), key=abs)
    verdict.worst_transition = worst


def check_alerts(run: MachineRun, verdict: Verdict) -> None:
    windows = observed(run)
    lo, hi = run.window
    tol = run.tolerance
    faults = [(max(a, lo), min(b, hi), s) for a, b, s in _bounded(run.truth, hi)
              if s.state == "fault" and min(b, hi) > max(a, lo)]
    matched: dict[int, list[AlertRow]] = {i: [] for i in range(len(faults))}
    stray: list[AlertRow] = []
    for alert in run.alerts:
        since = alert.since
        fits = [] if since is None else [
            i for i, (a, b, s) in enumerate(faults)
            if a - tol - 1.0 <= since <= b + tol and alert.episode in (None, str(s.fault_code))]
        if since is None or not fits:
            stray.append(alert)
            continue
        matched[min(fits, key=lambda i: abs(faults[i][0] - since))].append(alert)
    verdict.faults, verdict.alerts = len(faults), len(run.alerts)
    for i, (a, b, s) in enumerate(faults):
        seen = overlap((a, b), windows)
        if seen >= 2 * run.poll:
            verdict.observable_faults += 1
            if len(matched[i]) != 1:
                verdict.failures.append(f"fault {s.fault_code} at {a:.2f}-{b:.2f} (observed {seen:.2f} s): "
                                        f"{len(matched[i])} alerts")
    for alert in stray:
        verdict.failures.append(f"alert {alert.id} (since {alert.since}, episode {alert.episode}) matches no fault")


def check_machine(run: MachineRun) -> Verdict:
    verdict = Verdict(run.machine_id, tolerance=run.tolerance)
    check_totals(run, verdict)
    check_events(run, verdict)
    check_jobs(run, verdict)
    check_downtime(run, verdict)
    check_alerts(run, verdict)
    return verdict


def check_seqs(rows: Iterable[tuple[str, str, int]], gaps: Sequence[str] = ()) -> list[str]:
    """Every (gateway, epoch, seq) applied once; ``gaps``: the store's data gaps (each is a failure)."""
    counted = Counter(rows)
    failures = [f"{edge}/{epoch[:8]} seq {seq} applied {n} times" for (edge, epoch, seq), n in counted.items()
                if n > 1]
    failures += [f"data gap: {gap}" for gap in gaps]
    return failures
