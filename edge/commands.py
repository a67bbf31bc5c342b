"""Which commands from the consumer (``cmd/ack``, ``cmd/replay``) the gateway acts on.

An ack makes the gateway delete events, so a forged one loses data (docs/protocol.md, "Broker
security"). The broker's ACL keeps strangers off the command topics; on a broker the plant does
not control, a gateway with ``commands.secret_file`` also requires central's signature
(``plantpulse/protocol/signing.py``). Everything refused here is counted (``/metrics``) and logged at most
once a minute per reason, so a flood of forgeries cannot flood the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import ValidationError

from plantpulse.protocol import topics
from plantpulse.protocol.models import Ack, Replay
from plantpulse.protocol.signing import SignatureError, split, verify

log = logging.getLogger(__name__)

LOG_EVERY = 60.0  # seconds between two warnings of the same kind
REASONS = ("invalid", "unsigned", "bad_signature", "too_old")


class CommandGate:
    """Parses and checks commands; ``parse`` returns the command to act on, or None (counted)."""

    def __init__(self, site: str, edge_id: str, *, secret: bytes | None = None, max_age: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.edge_id = edge_id
        self.ack_topic = topics.gateway_topic(site, edge_id, "cmd/ack")
        self.replay_topic = topics.gateway_topic(site, edge_id, "cmd/replay")
        self.secret = secret
        self.max_age = max_age
        self.clock = clock
        self.refused: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._logged_at: dict[str, float] = {}

    @property
    def signed(self) -> bool:
        return self.secret is not None

    def parse(self, topic: str, payload: bytes) -> Ack | Replay | None:
        try:
            # without a secret a signature is cut off and ignored, so central can sign before every
            # gateway has its key
            body = verify(self.secret, topic, payload) if self.secret is not None else split(payload)[0]
        except SignatureError as exc:
            self._refuse(exc.reason, topic, str(exc))
            return None
        try:
            cmd = self._validate(topic, body)
        except (ValidationError, ValueError) as exc:
            self._refuse("invalid", topic, str(exc)[:300])
            return None
        age = self.clock() - cmd.ts
        if self.max_age is not None and age > self.max_age:
            self._refuse("too_old", topic, f"sent {age:.0f} s ago (commands.max_age is {self.max_age:g} s)")
            return None
        return cmd

    def _validate(self, topic: str, body: bytes) -> Ack | Replay:
        cmd: Ack | Replay
        if topic == self.ack_topic:
            cmd = Ack.model_validate_json(body)
        elif topic == self.replay_topic:
            cmd = Replay.model_validate_json(body)
        else:
            raise ValueError(f"unexpected topic {topic}")
        if cmd.edge_id != self.edge_id:
            raise ValueError(f"command for {cmd.edge_id}, we are {self.edge_id}")
        return cmd

    def _refuse(self, reason: str, topic: str, detail: str) -> None:
        self.refused[reason] += 1
        now = time.monotonic()
        last = self._logged_at.get(reason)
        if last is None or now - last >= LOG_EVERY:
            self._logged_at[reason] = now
            log.warning("ignoring a command on %s (%s, %d so far; logged at most once a minute): %s",
                        topic, reason, self.refused[reason], detail)
