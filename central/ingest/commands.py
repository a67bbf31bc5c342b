"""Central's half of signed commands: it signs every ``cmd/ack`` and ``cmd/replay`` it sends.

Keys live one file per gateway, ``<keys_dir>/<site>/<edge_id>.key`` (the layout that
``python -m plantpulse.broker_auth --sign`` writes): edge ids are unique only within a site, and
adding a gateway or rotating its key is replacing one file, picked up at the next command (the
file's size and modification time are checked each time, a stat per command) without a restart.
A gateway without a key file gets unsigned commands, logged once and counted: a gateway that
requires signatures then ignores them and keeps its events, so the mistake is visible and loses
nothing. The wire form is in docs/protocol.md, "Signed commands" (``plantpulse/protocol/signing.py``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from plantpulse.protocol.models import ID_PATTERN
from plantpulse.protocol.signing import read_secret, sign

log = logging.getLogger(__name__)
_ID = re.compile(ID_PATTERN)


class CommandsConfig(BaseModel):
    """The ``commands:`` section of central's configuration."""

    model_config = ConfigDict(extra="forbid")

    keys_dir: Path | None = Field(
        None,
        description="folder of per-gateway command keys, <site>/<edge_id>.key (python -m plantpulse.broker_auth "
        "--sign writes them to OUT/central/command-keys); commands to a gateway with a key are signed",
    )


class CommandSigner:
    """Signs a command payload for its gateway when that gateway has a key file."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self.signed = 0
        self.unsigned = 0
        self._keys: dict[Path, tuple[tuple[int, int], bytes]] = {}  # path -> ((mtime_ns, size), key)
        self._warned: set[tuple[Path, str]] = set()

    def key(self, site: str, edge_id: str) -> bytes | None:
        if not (_ID.match(site) and _ID.match(edge_id)):  # ids from topics always match; never a path trick
            return None
        path = self.keys_dir / site / f"{edge_id}.key"
        try:
            st = path.stat()
        except OSError:
            self._warn_once(path, "missing", f"no command key {path}: commands to {edge_id} of {site} go unsigned "
                                             "(a gateway that requires signatures ignores them)")
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._keys.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            key = read_secret(path, f"command key of {edge_id} of {site}")
        except ValueError as exc:
            self._warn_once(path, f"bad {stamp}", f"{exc}: its commands go unsigned")
            return None
        self._keys[path] = (stamp, key)
        return key

    def sign(self, site: str, edge_id: str, topic: str, payload: bytes) -> bytes:
        """``payload`` as it goes on the wire: signed with the gateway's key, or unchanged without one."""
        key = self.key(site, edge_id)
        if key is None:
            self.unsigned += 1
            return payload
        self.signed += 1
        return sign(key, topic, payload)

    def _warn_once(self, path: Path, what: str, message: str) -> None:
        if (path, what) not in self._warned:
            self._warned.add((path, what))
            log.warning("%s", message)
