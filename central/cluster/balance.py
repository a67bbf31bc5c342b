"""Which gateways a worker takes or gives up, from the leases and the live workers (pure: time passed in).

Every worker runs the same rule on the same rows each cycle: its share is ``ceil(gateways / workers)``;
it takes free or expired leases until it holds its share (at once: a dead worker's gateways must not
wait), and gives up what it holds beyond it, a few per cycle (``moves``), so that a join moves
gateways gradually instead of all at once.
Because the share is rounded up, holdings settle within one of each other and nobody ends above
its share: no worker holds more than its share plus one after a join or a leave.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    edge_id: str
    owner: str | None
    token: int
    expires_at: float

    def held(self, now: float) -> bool:
        return self.owner is not None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class Plan:
    take: list[str]
    give_up: list[str]
    share: int


def share(gateways: int, workers: int) -> int:
    return math.ceil(gateways / max(1, workers))


def plan(me: str, leases: list[Lease], workers: int, now: float, *, moves: int) -> Plan:
    """What ``me`` should take and give up now; ``workers`` counts the live workers, ``me`` included."""
    fair = share(len(leases), workers)
    mine = sorted((le.edge_id for le in leases if le.held(now) and le.owner == me), key=_spread)
    if len(mine) > fair:
        return Plan([], mine[fair:][:moves], fair)
    # free first by a hash of the id: workers starting together reach for different gateways
    free = sorted((le.edge_id for le in leases if not le.held(now)), key=lambda e: _spread(e + me))
    return Plan(free[:fair - len(mine)], [], fair)


def _spread(edge_id: str) -> int:
    return zlib.crc32(edge_id.encode())
