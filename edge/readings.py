"""What a collector hands the tracker: one machine's decoded tag values from one successful read.

Its own module because both sides use it (collectors make readings, the tracker and the wire fitting
read them) and neither should import the other.
"""

from __future__ import annotations

from dataclasses import dataclass

Raw = int | float | str | bool


@dataclass(frozen=True)
class Reading:
    """One successful read of a machine's tags, decoded but not yet interpreted."""

    state: Raw | None
    fault_code: int | None = None
    good: int | None = None
    scrap: int | None = None
    job: str | None = None
    power_on: int | None = None
    job_good: int | None = None  # good parts of the current job (the PLC resets it at each job change)
    job_scrap: int | None = None  # scrap parts of the current job
