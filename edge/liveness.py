"""Is the gateway alive in the sense a watchdog cares about? Pure: heartbeats and a clock in, reasons out.

systemd's watchdog (``WatchdogSec=``) restarts a service that stops pinging. What a restart can
fix is a *stuck* gateway: an event loop that no longer turns, a collection whose tick task hangs
on the outbox, a forwarder stuck on the disk. What it cannot fix is the world: a PLC switched off
or a broker down are reported by the collectors and the forwarder, and restarting the gateway
then would only lose the machines' last readings and hammer the PLCs. So the watchdog is fed
while both loops turn, whatever the PLCs and the broker do:

* collection: the count tick task turns at least every ``TICK_MAX_SLEEP`` (1 s), readings or not;
* forwarding: while connected, the send loop turns at least every second; while disconnected it
  waits for paho's own reconnect, which is not a stall.
"""

from __future__ import annotations

from dataclasses import dataclass

STALL_AFTER = 15.0  # seconds a loop that turns every second may stand still before it counts as stuck


@dataclass(frozen=True)
class Beats:
    """The last time (monotonic seconds) each loop turned, and whether the broker connection is up."""

    collection: float
    forwarder: float
    connected: bool


def stalls(now: float, beats: Beats, limit: float = STALL_AFTER) -> list[str]:
    """Why the gateway is stuck (empty: healthy, feed the watchdog)."""
    reasons = []
    if now - beats.collection > limit:
        reasons.append(f"collection has not turned for {now - beats.collection:.0f} s")
    if beats.connected and now - beats.forwarder > limit:
        reasons.append(f"forwarding has not turned for {now - beats.forwarder:.0f} s while connected")
    return reasons
