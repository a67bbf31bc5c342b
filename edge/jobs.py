"""Which job the parts of a read that saw a job change belong to (pure; docs/edge.md, "Jobs").

Cumulative counters say how many parts were made between two reads, not before or after the job
changed in between. A per-job counter (parts of the current job, reset by the PLC at each job
change) says how many the new job made: the rest are the old job's. Without one, or when it
disagrees with the cumulative counter (it was not reset, or a reset of the counters came in
between), the parts are said to span the change (``job_from`` on the count event): shown, never
booked to a job that may not have made them.

Residual: several job changes between two reads are one change to the reader; with a per-job
counter the parts of the jobs in between are booked to the job before them when the reads were
a poll apart (after an unobserved window they span the change instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JobSplit:
    """Good and scrap parts of one read: the old job's, the new job's, and those of either."""

    old: list[int] = field(default_factory=lambda: [0, 0])
    new: list[int] = field(default_factory=lambda: [0, 0])
    span: list[int] = field(default_factory=lambda: [0, 0])


def split_job_change(made: tuple[int, int], per_job: tuple[int | None, int | None], *, exact: bool,
                     watched: bool = True) -> JobSplit:
    """``made``: good and scrap parts of the read; ``per_job``: the per-job counters it showed (None: none).

    ``exact`` is False when the parts may include some of an earlier change still undecided (a
    value held across it): then nothing is split. ``watched`` is False when nobody read the PLC
    for a while before this read (unreachable, the gateway stopped): several jobs may have come and
    gone in that window, so only the new job's parts (the per-job counter) are certain; the rest
    span the change instead of being booked to the old job (found by the chaos run of issue 11).
    """
    split = JobSplit()
    for i, (parts, of_new) in enumerate(zip(made, per_job, strict=True)):
        if exact and of_new is not None and 0 <= of_new <= parts:
            split.new[i] = of_new
            if watched:
                split.old[i] = parts - of_new
            else:
                split.span[i] = parts - of_new
        else:
            split.span[i] = parts
    return split


def continues_old(value: int | None, before: int | None, count: int | None, count_before: int | None,
                  bits: int) -> int | None:
    """A per-job counter's value at a job change, or None when it may still be the old job's.

    The PLC resets it at each job change. A value that continues the old one (the old value plus
    what the cumulative counter, ``count``, rose by since that read) may not have been reset in what
    we read: an OPC UA server updates its variables one at a time, so the new job number can arrive
    before the reset (the chaos run of issue 11 found a scrap part of the old job booked to the new
    one that way). Such a value says nothing about the new job: the parts span the change. (0 is 0
    either way.)
    """
    if value is None or before is None or count is None or count_before is None or value == 0:
        return value
    return None if value == before + (count - count_before) % (1 << bits) else value
