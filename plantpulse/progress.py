"""Progress of a long command: a bar redrawn in place on a terminal, plain lines in a log.

Why two forms: an engineer at a terminal wants one line that moves (how far, how fast, how long
still); a command run by systemd, cron or ``docker compose run`` writes to a journal or a file,
where a carriage-return bar becomes thousands of garbled lines. So the form follows the stream:
a terminal gets the bar (redrawn at most 10 times a second), anything else gets a plain log line
at most every ``every`` seconds, and always the last one.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import IO

BAR_WIDTH = 28


def _clock_text(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """``update(done)`` as work gets done (``done`` out of ``total`` steps), ``finish()`` at the end."""

    def __init__(self, what: str, total: float, *, stream: IO[str] | None = None, log: logging.Logger | None = None,
                 tty: bool | None = None, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        """``stream``: where the bar goes (default stderr); ``tty``: force a form (default: the stream's);
        ``log``: the logger of the plain lines (default: the ``plantpulse.progress`` logger)."""
        self.what = what
        self.total = max(float(total), 0.0)
        self.stream = sys.stderr if stream is None else stream
        self.log = log or logging.getLogger(__name__)
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.clock = clock
        self.started = clock()
        self.done = 0.0
        self._shown_at: float | None = None
        self._width = 0

    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    def text(self, detail: str = "") -> str:
        """The status line: what, percent, detail, elapsed and the time still to go."""
        frac = self.fraction()
        elapsed = self.clock() - self.started
        parts = [f"{self.what}: {frac * 100:5.1f}%"]
        if detail:
            parts.append(detail)
        parts.append(f"{_clock_text(elapsed)} elapsed")
        if 0 < frac < 1:
            parts.append(f"about {_clock_text(elapsed * (1 - frac) / frac)} to go")
        return ", ".join(parts)

    def update(self, done: float, detail: str = "") -> None:
        self.done = done
        now = self.clock()
        if self._shown_at is not None and now - self._shown_at < (0.1 if self.tty else self.every):
            return
        self._shown_at = now
        self._show(detail)

    def finish(self, detail: str = "") -> None:
        """The last state, always shown; on a terminal the bar's line is ended."""
        self.done = max(self.done, self.total)
        self._show(detail)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, detail: str) -> None:
        if not self.tty:
            self.log.info("%s", self.text(detail))
            return
        filled = round(self.fraction() * BAR_WIDTH)
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.text(detail)}"
        pad = max(0, self._width - len(line))  # wipe the rest of a longer previous line
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
