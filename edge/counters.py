"""One part counter: from raw PLC values to parts made (pure logic, time passed in).

docs/edge.md, "Counting rules", states each rule with its residual error; this module is where
they are decided. A ``Counter`` remembers the last raw value it accepted and the parts counted
since the tracker last emitted. Each successful read is ``observe``d with a ``Context``: what
the rest of the read says about the PLC (did its power-on counter move? was it out of sight
since the last read?).

Why each rule is as it is:

* **Plausible**: a machine cannot make more than ``elapsed / min_cycle_time + 1`` parts in
  ``elapsed`` seconds. Everything below compares a delta with that limit.
* **Rollover**: a drop whose wrapped delta ``2**bits - last + raw`` is plausible.
* **Power cycle, known**: the power-on counter rose by one to three: the counters restarted at 0,
  so ``raw`` is what was made since the power-up, whatever the value before; a value the machine
  could not have made since the last read was preset after the power-up as well: re-based there.
* **Power cycle, possible**: without a power-on counter, a PLC that was out of sight (failed
  reads, offline, a stopped gateway) may have been power-cycled: a power cycle takes it off the
  network. If every counter now shows a value reachable from 0 in the window (the tracker decides,
  ``Context.maybe_power_cycle``), a drop is a reset (more likely than a rollover after an outage)
  and a rise is counted as a rise; both are marked ``possibly_lost``, since parts made before a
  power loss were never seen.
* **Suspect**: any other implausible value is held, and the next read decides. It continues from
  the old value: the suspect was a glitch (a bad read), ignored. It continues from the suspect:
  the counter really jumped. When both fit (the next read came late, or several OPC UA moments of
  one batch reached the tracker at once), the suspect lies on the way from the old value to the
  new one and it was all production: counted from the old value. A real jump that is a drop to a
  value the machine could have reached since a power-up (and no power-on counter saying
  otherwise) is a reset; anything else is a **preset** (an operator or the PLC program set the
  counter): re-based at the suspect value, and the parts between the suspect and the confirming
  read are counted. Neither: re-based at the new value, nothing counted.
* **Confirmed by silence**: a subscription notifies only changes; when nothing replaced a suspect
  for longer than any change takes to arrive, it was real (``confirm``), as of its own read.

A real restarted counter starts near 0, so a preset far above what the elapsed time allows is
never taken for a reset (defect A of issue 11); and re-basing at the suspect instead of the
confirming read keeps the parts made after the preset (defect B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    """What the rest of a read says about the PLC since the previous successful read.

    ``power``: True when the power-on counter says the PLC restarted, False when it says it did not,
    None when there is no power-on counter (or a bad read of it). ``maybe_power_cycle``: without a
    power-on counter, the PLC could not be read meanwhile (failed reads, offline, the gateway
    stopped) and every counter shows a value it could have reached from 0 since: a power cycle
    may hide in the window (a power cycle restarts all counters, so one large counter rules it out).
    """

    power: bool | None = None
    maybe_power_cycle: bool = False


@dataclass
class Flags:
    """What the parts counted since the last event cannot vouch for (sent on the count event)."""

    reset: bool = False
    possibly_lost: bool = False
    rebased: bool = False

    def any(self) -> bool:
        return self.reset or self.possibly_lost or self.rebased


@dataclass
class Counter:
    """One part counter: last accepted raw value, parts counted since the last event, a suspect value."""

    bits: int
    min_cycle_time: float
    last: int | None = None
    last_ts: float = -math.inf  # when ``last`` was read (-inf: before a restart, unknown)
    last_mono: float | None = None  # the same on the monotonic clock (None: since a restart)
    last_sent: float | None = None  # when that read was asked for (monotonic): its value is from after it
    pending: int = 0
    suspect: int | None = None
    suspect_ts: float = 0.0
    suspect_mono: float | None = None
    suspect_power: bool | None = None  # the power context of the read that showed the suspect
    suspect_sent: float | None = None  # when the read that showed the suspect was asked for

    @property
    def modulus(self) -> int:
        return 1 << self.bits

    def base(self) -> int | None:
        """The raw value the counted-and-emitted parts reach: what a restarted tracker counts from."""
        return None if self.last is None else (self.last - self.pending) % self.modulus

    # ----------------------------------------------------------------- the rules
    def observe(self, raw: int, now: float, mono: float | None, ctx: Context, flags: Flags,
                sent: float | None = None) -> int:
        """Take one read of the counter; returns the parts it adds (also added to ``pending``).

        ``mono``: when the read's answer arrived; ``sent``: when it was asked for (default: the same).
        The PLC's value is from between the two, so the time that can have passed between two reads
        is at most this answer's arrival minus the last accepted read's request: a late answer (a
        loaded PLC, network or gateway) never makes parts look too many for the time.
        """
        if sent is None:
            sent = mono
        if self.last is None:  # first read ever: the counter's history before us is not ours to count
            self._accept(raw, 0, now, mono, sent)
            return 0
        elapsed = _elapsed(now, mono, self.last_ts, self._since(self.last_mono, self.last_sent))
        if ctx.power is True:  # the PLC restarted its counters: count from 0, whatever the value now
            self.suspect = None
            if not self.fits(raw, elapsed):
                # more than it could make since: the counter was also preset after the power-up (the
                # chaos run counted a preset to 4,214 as parts): re-based there, nothing counted
                flags.reset = flags.possibly_lost = flags.rebased = True
                return self._accept(raw, 0, now, mono, sent)
            return self._reset(raw, now, mono, sent, flags)
        if ctx.maybe_power_cycle:
            # out of sight long enough to have restarted and made ``raw`` parts since: maybe a power cycle
            self.suspect = None
            flags.possibly_lost = True
            if raw < self.last:
                return self._reset(raw, now, mono, sent, flags)
            return self._accept(raw, raw - self.last, now, mono, sent)
        if self.suspect is not None:
            return self._resolve(raw, now, mono, sent, elapsed, flags)
        delta = (raw - self.last) % self.modulus  # a rise, or a rollover
        if self.fits(delta, elapsed):
            return self._accept(raw, delta, now, mono, sent)
        self.suspect, self.suspect_ts, self.suspect_mono, self.suspect_power = raw, now, mono, ctx.power
        self.suspect_sent = sent
        return 0

    @staticmethod
    def _since(mono: float | None, sent: float | None) -> float | None:
        return sent if sent is not None else mono

    def _resolve(self, raw: int, now: float, mono: float | None, sent: float | None, elapsed: float,
                 flags: Flags) -> int:
        """The read after a suspect value decides: glitch, reset, or a preset counter.

        ``now``/``mono``/``sent``: the deciding read (the suspect's own read when silence confirms it).
        """
        assert self.suspect is not None and self.last is not None
        suspect, last = self.suspect, self.last
        self.suspect = None
        from_last = (raw - last) % self.modulus
        since_suspect = _elapsed(now, mono, self.suspect_ts, self._since(self.suspect_mono, self.suspect_sent))
        from_suspect = (raw - suspect) % self.modulus
        if self.fits(from_last, elapsed):
            # a glitch, or (the suspect lies between the two values) production a late read made look
            # implausible: either way what was made is the climb from the old value
            return self._accept(raw, from_last, now, mono, sent)
        if not self.fits(from_suspect, since_suspect):
            flags.rebased = True  # a counter we cannot follow: start again here, count nothing
            return self._accept(raw, 0, now, mono, sent)
        before = _elapsed(self.suspect_ts, self.suspect_mono, self.last_ts, self._since(self.last_mono, self.last_sent))
        if suspect < last and self.suspect_power is None and self.fits(suspect, before):
            # dropped to a value reachable from 0 since the last read, and kept counting: a reset
            self._reset(suspect, self.suspect_ts, self.suspect_mono, self.suspect_sent, flags)
            return suspect + self._accept(raw, from_suspect, now, mono, sent)
        flags.rebased = True  # a preset: the counter now counts from the suspect value
        return self._accept(raw, from_suspect, now, mono, sent)

    def confirm(self, flags: Flags) -> int:
        """The suspect value stood (a subscription stayed silent long enough): it was real, as of its read.

        Only what the suspect read itself showed is taken as known: no time after it is vouched for.
        """
        if self.suspect is None or self.last is None:
            return 0
        before = _elapsed(self.suspect_ts, self.suspect_mono, self.last_ts, self._since(self.last_mono, self.last_sent))
        return self._resolve(self.suspect, self.suspect_ts, self.suspect_mono, self.suspect_sent, before, flags)

    def _reset(self, raw: int, now: float, mono: float | None, sent: float | None, flags: Flags) -> int:
        """The counter restarted at 0 and now shows ``raw``: count it; what came before the loss is unseen."""
        flags.reset = flags.possibly_lost = True
        return self._accept(raw, raw, now, mono, sent)

    def _accept(self, raw: int, parts: int, now: float, mono: float | None, sent: float | None) -> int:
        """Take ``raw`` as the counter's value, read at ``now``/``mono`` and asked for at ``sent``.

        The request time is the one of the read whose value is accepted (the suspect's own read when
        a suspect is accepted late): the next plausibility window starts there.
        """
        self.pending += parts
        self.last, self.last_ts, self.last_mono = raw, now, mono
        self.last_sent = None if mono is None else (sent if sent is not None else mono)
        return parts

    def could_restart(self, raw: int, now: float, mono: float | None) -> bool:
        """Could the counter have restarted at 0 since its last accepted read and reached ``raw``?"""
        if self.last is None:
            return False
        return self.fits(raw, _elapsed(now, mono, self.last_ts, self._since(self.last_mono, self.last_sent)))

    def fits(self, parts: int, elapsed: float) -> bool:
        """Could the machine have made ``parts`` parts in ``elapsed`` seconds?"""
        return plausible(parts, elapsed, self.min_cycle_time)


def plausible(parts: int, elapsed: float, min_cycle_time: float) -> bool:
    """At most one part per ``min_cycle_time``, plus one (a part may end right after a read)."""
    if math.isinf(elapsed):
        return True
    return parts <= math.floor(max(0.0, elapsed) / min_cycle_time) + 1


def _elapsed(now: float, mono: float | None, last_ts: float, last_mono: float | None) -> float:
    """Seconds between two reads: monotonic when both have it, else wall clock (after a restart).

    A negative wall-clock difference (the clock stepped back across the restart) says nothing:
    infinite, i.e. any delta is plausible for that one read (a stated residual: a bad read or a
    preset on exactly that read counts as production).
    """
    if mono is not None and last_mono is not None:
        return mono - last_mono
    wall = now - last_ts
    return wall if wall >= 0 else math.inf
