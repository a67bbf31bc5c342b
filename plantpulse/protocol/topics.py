"""MQTT topics of protocol v1 (docs/protocol.md).

One events topic per gateway: MQTT keeps order only within a topic, and a gateway's state
events must arrive in seq order. Everything a consumer (central) publishes lives under the
reserved gateway name ``_central``, which no gateway id can take (ids never start with "_").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from plantpulse.protocol.models import ID_PATTERN

ROOT = "plantpulse/v1"
CENTRAL = "_central"

GatewayChannel = Literal["events", "status", "health", "snapshot"]
CommandChannel = Literal["cmd/ack", "cmd/replay"]
GATEWAY_CHANNELS: tuple[GatewayChannel, ...] = ("events", "status", "health", "snapshot")

_ID = re.compile(ID_PATTERN)


def gateway_topic(site: str, edge_id: str, channel: GatewayChannel | CommandChannel) -> str:
    return f"{ROOT}/{site}/{edge_id}/{channel}"


def central_topic(site: str, *parts: str) -> str:
    return "/".join((ROOT, site, CENTRAL, *parts))


def subscriptions(site: str = "+") -> list[str]:
    """What a consumer subscribes to: every gateway's four channels (``+`` = every site)."""
    return [f"{ROOT}/{site}/+/{channel}" for channel in GATEWAY_CHANNELS]


@dataclass(frozen=True)
class ParsedTopic:
    site: str
    edge_id: str
    channel: str


def parse(topic: str) -> ParsedTopic | None:
    """Split a gateway topic; None for anything else (including the reserved ``_central``)."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        return None
    site, edge_id, channel = parts[2], parts[3], "/".join(parts[4:])
    if not (_ID.match(site) and _ID.match(edge_id)):
        return None
    return ParsedTopic(site, edge_id, channel)
