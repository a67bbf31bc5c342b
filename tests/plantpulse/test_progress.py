"""plantpulse.progress: a bar on a terminal, throttled plain lines in a log, always the last state."""

from __future__ import annotations

import io
import logging

import pytest

from plantpulse.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_line_redrawn_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    bar = Progress("backfill", 4, stream=out, tty=True, clock=clock)
    clock.now = 10
    bar.update(1, "250 points")
    clock.now = 10.05
    bar.update(2)  # within 0.1 s of the last redraw: skipped
    clock.now = 20
    bar.update(2, "500 points")
    bar.finish("1,000 points written")
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 3 and out.getvalue().endswith("\n")
    assert frames[0].startswith("[#######.....................] backfill:  25.0%, 250 points, 0:10 elapsed, "
                                "about 0:30 to go")
    assert frames[1].startswith("[##############..............] backfill:  50.0%, 500 points, 0:20 elapsed")
    assert frames[2].startswith("[############################] backfill: 100.0%, 1,000 points written, 0:20 elapsed")


def test_a_log_gets_plain_lines_at_most_every_few_seconds_and_the_last(caplog: pytest.LogCaptureFixture) -> None:
    out, clock = io.StringIO(), Clock()
    caplog.set_level(logging.INFO, "plantpulse.progress")
    bar = Progress("backup", 100, stream=out, tty=False, every=5, clock=clock)
    for step in range(1, 101):
        clock.now = step * 0.1
        bar.update(step)
    bar.finish("done")
    lines = [r.getMessage() for r in caplog.records]
    assert out.getvalue() == ""  # nothing drawn: plain lines go to the log
    assert lines[0].startswith("backup:   1.0%") and lines[-1].startswith("backup: 100.0%, done, 0:10 elapsed")
    assert len(lines) == 3  # at 0.1 s and 5.1 s (10.0 s is within 5 s of it), and the finish


def test_the_form_follows_the_stream() -> None:
    assert not Progress("x", 1, stream=io.StringIO()).tty
    assert Progress("x", 0).fraction() == 1.0
