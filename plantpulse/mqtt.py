"""paho-mqtt driven from asyncio, shared by the edge gateway, central and the reference consumer.

paho runs its own network thread (measured here: threaded paho publishes QoS 1 several times
faster than publishes awaited one by one); every callback hops onto the event loop with
``call_soon_threadsafe``, so the rest of plantpulse never touches paho's thread. A publish
returns a future resolved by the broker's PUBACK (MQTT v5, so a refusal by the ACL comes back
as a reason code instead of being dropped silently).

Reconnection is paho's (capped exponential backoff); the Last Will is re-registered before
every reconnect through ``will`` so that each connection's Will carries that connection's birth
counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)


class TlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca_file: Path = Field(..., description="CA certificate (PEM) that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate (PEM), when the broker requires one")
    key_file: Path | None = Field(None, description="client private key (PEM), with cert_file")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        return self


class MqttConfig(BaseModel):
    """Connection to the MQTT broker."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (1883 plain, 8883 TLS)")
    username: str | None = Field(None, description="user name, when the broker checks passwords")
    password_env: str | None = Field(None, description="name of the environment variable holding the password")
    password_file: Path | None = Field(None, description="file holding the password (first line)")
    tls: TlsConfig | None = Field(None, description="TLS settings; omit for a plain connection")
    keepalive: int = Field(15, ge=2, le=3600, description="keep-alive seconds; the Will fires ~1.5x after loss")
    session_expiry: int = Field(
        7 * 24 * 3600, ge=0, description="seconds the broker keeps this client's session while it is away"
    )
    reconnect_max: int = Field(30, ge=1, le=600, description="longest wait between reconnect attempts, seconds")

    @model_validator(mode="after")
    def _one_password_source(self) -> MqttConfig:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username")
        return self

    def password(self) -> str | None:
        """Read the secret now (never stored in the config file itself)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ValueError(f"environment variable {self.password_env} (mqtt.password_env) is not set")
            return value
        if self.password_file:
            try:
                return self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                raise ValueError(f"cannot read mqtt.password_file {self.password_file}: {exc}") from None
        return None


class PublishRefusedError(Exception):
    """The broker answered a publish with a failure reason code (e.g. 0x87 Not authorized by the ACL)."""


class MqttLink:
    """One MQTT v5 client; all callbacks and futures live on the asyncio loop that created it."""

    def __init__(
        self,
        cfg: MqttConfig,
        client_id: str,
        *,
        clean_start: bool = False,
        subscriptions: list[tuple[str, int]] | None = None,
        manual_ack: bool = False,
        max_inflight: int = 100,
        on_message: Callable[[str, bytes, int, int], None] | None = None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        will: Callable[[], tuple[str, bytes]] | None = None,
    ) -> None:
        """``on_message(topic, payload, mid, qos)`` runs on the loop for every message; ``on_connected``
        after every (re)connection; ``will()`` gives the Last Will before every connection attempt."""
        self.cfg = cfg
        self.client_id = client_id
        self._loop = asyncio.get_running_loop()
        self._subs = subscriptions or []
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, reconnect_on_failure=True
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, cfg.reconnect_max)
        if manual_ack:
            self._client.manual_ack_set(True)
        password = cfg.password()
        if cfg.username:
            self._client.username_pw_set(cfg.username, password)
        if cfg.tls is not None:
            self._client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self._clean_start = clean_start
        self._connected = asyncio.Event()
        self.generation = 0  # +1 at every successful connection
        self.session_present = False
        self.last_error: str | None = None
        self._failing = False  # a failure to connect was logged: once per episode, not per retry
        self._refused = False  # the last attempt got a CONNACK with a failure (logged as such)
        self._refused_topics: set[str] = set()  # publishes the broker refused, each logged once
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._topics: dict[int, str] = {}
        self.will = will
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.on_message = on_message
        self._tasks: set[asyncio.Task[None]] = set()
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Connect in the background; ``wait_connected`` tells when it worked."""
        self._set_will()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
        props.SessionExpiryInterval = self.cfg.session_expiry
        self._client.connect_async(
            self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive,
            clean_start=self._clean_start, properties=props,
        )
        self._client.loop_start()

    async def stop(self, *, graceful: bool = True) -> None:
        """Disconnect (a clean DISCONNECT: the broker does not send the Will) and stop the thread."""
        if graceful and self.connected:
            self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        # paho's loop_stop only ends its thread: its socket (an ungraceful stop, a connect in flight) and
        # the loopback socket pair it wakes its loop with stay open until the garbage collector finds the
        # client, in a cycle, where they are reported as leaked; close them now (a Will still fires)
        with contextlib.suppress(OSError):
            reset = getattr(self._client, "_reset_sockets", None)  # paho 2.x; private but what __del__ calls
            if reset is not None:
                reset()
            elif (sock := self._client.socket()) is not None:
                sock.close()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("MQTT link stopped"))
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    # ----------------------------------------------------------------- traffic
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> asyncio.Future[None]:
        """Hand a message to paho; the future resolves on PUBACK (at once for QoS 0).

        A caller may await the future or leave it: a refusal by the broker is logged here once per
        topic (until a publish there works again) either way, never as asyncio's "Future exception
        was never retrieved" once per message.
        """
        fut: asyncio.Future[None] = self._loop.create_future()
        fut.add_done_callback(_retrieved)
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            fut.set_exception(ConnectionError(f"publish to {topic} failed: {paho.error_string(info.rc)}"))
        elif qos == 0:
            fut.set_result(None)
        else:
            # The PUBACK callback reaches the loop through call_soon_threadsafe, so it runs after
            # this registration even when the broker answered before publish() returned.
            self._pending[info.mid] = fut
            self._topics[info.mid] = topic
        return fut

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        """Add subscriptions now (when connected) and at every later (re)connection."""
        new = [t for t in topics if (t, qos) not in self._subs]
        self._subs = [*self._subs, *((t, qos) for t in new)]
        if new and self.connected:
            self._client.subscribe([(t, qos) for t in new])

    def unsubscribe(self, topics: list[str]) -> None:
        """Drop subscriptions now and for later connections (messages already sent may still arrive)."""
        gone = set(topics)
        self._subs = [(t, q) for t, q in self._subs if t not in gone]
        if gone and self.connected:
            self._client.unsubscribe(sorted(gone))

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (manual_ack mode): call only after it is durably applied."""
        if self.connected:  # after a reconnect the broker resends what was not acknowledged anyway
            self._client.ack(mid, qos)

    # ----------------------------------------------------------------- paho thread -> loop
    def _set_will(self) -> None:
        if self.will is not None:
            topic, payload = self.will()
            self._client.will_set(topic, payload, qos=1, retain=True)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if rc.is_failure:
            self.last_error = str(rc)
            log.warning("MQTT broker %s:%s refused the connection: %s", self.cfg.host, self.cfg.port, rc)
            self._loop.call_soon_threadsafe(setattr, self, "_refused", True)
            return
        for topic, qos in self._subs:
            client.subscribe(topic, qos=qos)
        self.session_present = bool(getattr(flags, "session_present", False))
        self._loop.call_soon_threadsafe(self._connected_on_loop)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # no TCP connection or no TLS handshake: paho keeps the reason to itself, so say where to look
        self._loop.call_soon_threadsafe(
            self._failed_on_loop,
            "cannot connect (broker down or unreachable, or TLS refused: a broker certificate not signed by "
            "mqtt.tls.ca_file, or without the host name used here)" if self.cfg.tls is not None else
            "cannot connect (broker down or unreachable at this address and port)",
        )

    def _failed_on_loop(self, reason: str) -> None:
        self.last_error = reason
        if not self._failing:
            self._failing = True
            log.warning("MQTT broker %s:%s: %s; retrying quietly until it works", self.cfg.host, self.cfg.port,
                        reason)

    def _connected_on_loop(self) -> None:
        self.generation += 1
        self.last_error = None
        self._failing = False
        self._connected.set()
        log.info("MQTT connected to %s:%s as %s", self.cfg.host, self.cfg.port, self.client_id)
        if self.on_connected is not None:
            self._spawn(self.on_connected(), "mqtt-on-connected")

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        # Runs before paho reconnects: register the next connection's Will now.
        self._set_will()
        self._loop.call_soon_threadsafe(self._disconnected_on_loop, str(rc))

    def _disconnected_on_loop(self, reason: str) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self.last_error = reason
        if was:
            log.warning("MQTT connection to %s:%s lost (%s); reconnecting", self.cfg.host, self.cfg.port, reason)
        elif self._refused:
            self._refused = False  # the refusal was logged with its reason
        else:
            self._failed_on_loop(
                f"closed before accepting the connection ({reason}): "
                + ("does this port speak TLS?" if self.cfg.tls is not None else
                   "a TLS port needs mqtt.tls (ca_file), port 8883 in the shipped configuration")
            )
        if self.on_disconnected is not None:
            self.on_disconnected()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        # paho calls this holding its message lock: never take a lock here, only hop to the loop
        self._loop.call_soon_threadsafe(self._acked, mid, rc)

    def _acked(self, mid: int, rc: ReasonCode) -> None:
        fut = self._pending.pop(mid, None)
        topic = self._topics.pop(mid, "")
        if fut is None or fut.done():
            return
        if rc.is_failure:
            if topic not in self._refused_topics:
                self._refused_topics.add(topic)
                log.error("MQTT broker %s:%s refused a publish to %s: %s (check the ACL: may user %s write there?); "
                          "said once until a publish there works", self.cfg.host, self.cfg.port, topic, rc,
                          self.cfg.username)
            fut.set_exception(PublishRefusedError(f"broker refused publish {topic}: {rc} (check the ACL)"))
        else:
            self._refused_topics.discard(topic)
            fut.set_result(None)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if self.on_message is not None:
            self._loop.call_soon_threadsafe(self.on_message, msg.topic, bytes(msg.payload), msg.mid, msg.qos)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("MQTT callback %s failed", task.get_name(), exc_info=task.exception())


def _retrieved(fut: asyncio.Future[None]) -> None:
    """Mark a publish's outcome as seen (a refusal is logged by the link; awaiting callers still get it)."""
    if not fut.cancelled():
        fut.exception()
