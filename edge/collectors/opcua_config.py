"""Configuration of an OPC UA machine: its server, session, security and the nodes of its tags.

Secrets never sit in the YAML: the password comes from ``password_env`` (an environment
variable) or ``password_file``, read again at every connect.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from edge.collectors.machine_config import JOB_COUNTER_HELP, TAG_NAMES, MachineBase, Strict
from plantpulse.configfile import ConfigError

# A moment in which only part counters changed reaches the tracker at most this often per machine
# (ChangeSplitter's ``coalesce`` in the collector): state, fault and job changes go through at once.
COUNTS_ONLY_EVERY = 1.0

_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=.+)$")


class OpcuaTag(Strict):
    """A variable node. A plain string is short for ``{node: ...}``."""

    node: str = Field(
        ...,
        description="node id such as 's=Line1.State', 'i=1001', 'nsu=urn:vendor:plc;s=Counter' or 'ns=3;s=X' "
        "(without ns/nsu the machine's namespace_uri is used)",
    )
    bits: int | None = Field(
        None, ge=1, le=64, description="counters: width at which the PLC's counter wraps, e.g. 16 for a UInt16"
    )

    @field_validator("node")
    @classmethod
    def _node_syntax(cls, value: str) -> str:
        if not _NODE_ID.match(value):
            raise ValueError("not an OPC UA node id; write e.g. s=Machine1.State, i=1001 or nsu=urn:x;s=Name")
        return value


def _tag_from_str(value: Any) -> Any:
    return {"node": value} if isinstance(value, str) else value


NodeTag = Annotated[OpcuaTag, Field(description="a node id string, or {node: ..., bits: ...}")]


class OpcuaTags(Strict):
    """Which nodes hold the machine's values. Only ``state`` and ``good_count`` are required."""

    state: NodeTag = Field(..., description="the machine state variable (mapped by state_map)")
    good_count: NodeTag = Field(..., description="good part counter variable")
    scrap_count: NodeTag | None = Field(None, description="scrap part counter variable")
    fault_code: NodeTag | None = Field(None, description="fault / alarm code variable (0 = none)")
    job: NodeTag | None = Field(None, description="job / program number variable")
    power_on_count: NodeTag | None = Field(None, description="power-on counter variable")
    job_good_count: NodeTag | None = Field(None, description=JOB_COUNTER_HELP.format(kind="good"))
    job_scrap_count: NodeTag | None = Field(None, description=JOB_COUNTER_HELP.format(kind="scrap"))

    @model_validator(mode="before")
    @classmethod
    def _strings_are_nodes(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: _tag_from_str(value) for key, value in data.items()}
        return data


class OpcuaMachine(MachineBase):
    """A machine read over OPC UA: subscriptions by default, polling as a fallback."""

    protocol: Literal["opcua"] = Field(..., description="'modbus' or 'opcua'")
    endpoint: str = Field(
        ..., pattern=r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$", description="server URL, e.g. opc.tcp://192.168.1.30:4840"
    )
    namespace_uri: str | None = Field(
        None, description="namespace URI of the tags (its index is looked up on every connect), e.g. urn:vendor:plc"
    )
    mode: Literal["subscription", "polling"] = Field(
        "subscription", description="'subscription' (data-change notifications) or 'polling'"
    )
    publishing_interval: float = Field(0.5, gt=0, description="subscription: seconds between notification batches")
    sampling_interval: float = Field(
        0.1, ge=0, description="subscription: seconds between the server's samples of each value (0 = fastest)"
    )
    queue_size: int = Field(
        10, ge=2, le=1000, description="subscription: values the server queues per state/fault item between batches"
    )
    counter_check_interval: float = Field(
        60.0, gt=0, description="subscription: seconds between plain reads of the counters that check the subscription"
    )
    poll_interval: float = Field(1.0, gt=0, description="polling: seconds between reads")
    keepalive_interval: float = Field(
        5.0, gt=0, description="seconds between checks that the session is alive; offline within ~2 of them"
    )
    timeout: float = Field(5.0, gt=0, description="seconds to wait for the server's answer, e.g. 5")
    security: Literal["None", "Sign", "SignAndEncrypt"] = Field(
        "None", description="message security: None, Sign or SignAndEncrypt"
    )
    policy: Literal["Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"] = Field(
        "Basic256Sha256", description="security policy, e.g. Basic256Sha256"
    )
    certificate: Path | None = Field(
        None, description="client certificate (DER), created self-signed if missing; relative to this file"
    )
    private_key: Path | None = Field(None, description="client private key (PEM), created if missing")
    server_certificate: Path | None = Field(
        None, description="the server's certificate to pin (DER/PEM); default: taken from its endpoint list"
    )
    application_uri: str = Field(
        "urn:plantpulse:edge", min_length=1, description="client application URI written into the certificate"
    )
    username: str | None = Field(None, min_length=1, description="user name for username/password login")
    password_env: str | None = Field(None, min_length=1, description="environment variable holding the password")
    password_file: Path | None = Field(None, description="file whose first line is the password")
    tags: OpcuaTags = Field(..., description="node ids of state, good_count (and optional tags)")

    @model_validator(mode="after")
    def _security_complete(self) -> OpcuaMachine:
        if self.security != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(
                f"security {self.security} needs certificate: and private_key: (paths; created if missing)"
            )
        if self.password_env and self.password_file:
            raise ValueError("give the password in password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username:")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError(
                "username needs password_env: (an environment variable) or password_file: (passwords never "
                "go into the configuration file)"
            )
        for name in TAG_NAMES:
            tag = getattr(self.tags, name)
            if tag is not None and self.namespace_uri is None and not tag.node.startswith(("ns=", "nsu=")):
                raise ValueError(
                    f"tags.{name} '{tag.node}' has no namespace: set namespace_uri: or write nsu=URI;{tag.node}"
                )
        return self

    @property
    def connection(self) -> tuple[object, ...]:
        """Machines with equal keys share one session (e.g. several machines behind one OPC UA gateway).

        Everything that is not about the machine itself is about the session, so it is in the key.
        """
        own = {"id", "name", "min_cycle_time", "state_map", "unknown_state", "offline_after", "retry_max", "tags",
               "namespace_uri"}
        return tuple((name, str(getattr(self, name))) for name in type(self).model_fields if name not in own)

    def counter_bits(self, name: str) -> int:
        tag = getattr(self.tags, name)
        return 32 if tag is None or tag.bits is None else int(tag.bits)

    def longest_delivery(self) -> float | None:
        """Subscription mode: the longest a change of a counter takes to reach the tracker (seconds).

        Sampled, published, then held back by the counters-only coalescing; after that long without
        a notification the value is still what it was. None when polling (only a read says so).
        """
        if self.mode != "subscription":
            return None
        return self.sampling_interval + 2 * self.publishing_interval + COUNTS_ONLY_EVERY

    def password(self) -> str | None:
        """The password from the environment or the file; raises ConfigError naming what is missing."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"machine {self.id}: environment variable {self.password_env} (password_env) is not set"
                )
            return value
        if self.password_file:
            try:
                return self.password_file.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError) as exc:
                raise ConfigError(
                    f"machine {self.id}: cannot read the password from {self.password_file} (password_file): {exc}"
                ) from None
        return None
