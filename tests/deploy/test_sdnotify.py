"""plantpulse.sdnotify against a real unix datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantpulse.sdnotify import Notifier
from tests.fixtures.notify import NotifySocket


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_ready_watchdog_and_stopping_arrive(listener: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(listener.path)})
    assert notifier.enabled
    assert notifier.ready("serving")
    assert notifier.watchdog()
    assert notifier.stopping()
    listener.wait_for("STOPPING=1", 5)
    assert listener.received == ["READY=1\nSTATUS=serving", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_namespace_socket() -> None:
    name = f"plantpulse-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_nothing_is_sent_without_notify_socket(listener: NotifySocket) -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()
    assert listener.drain(0.2) == []


def test_a_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not notifier.watchdog()  # logged once, never raised


def test_watchdog_interval_is_half_of_watchdog_sec() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval() == 15.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == 15.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None
    assert Notifier({}).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "nonsense"}).watchdog_interval() is None
