"""systemd's notification protocol (``sd_notify``), without a dependency: one datagram per message.

Why our own ten lines and not a library: the protocol is a unix datagram of ``KEY=VALUE`` lines
sent to the socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace),
and the well-kept implementations are C (libsystemd) or bindings that need it at build time. An
industrial PC's image should not need a compiler for a watchdog ping.

What plantpulse sends:

* ``READY=1`` once a service does its job (central: the API serves; edge: the outbox is open and
  the tasks run), so ``Type=notify`` units order their dependants on real readiness;
* ``WATCHDOG=1`` every ``watchdog_interval()`` seconds while the service is healthy, so a hung
  process (a blocked event loop, a stalled task) is killed and restarted by systemd
  (``WatchdogSec=``); a healthy one that merely waits for a PLC or the broker keeps feeding it;
* ``STOPPING=1`` when a clean shutdown begins, and ``STATUS=...`` lines shown by ``systemctl status``.

Without ``$NOTIFY_SOCKET`` (not started by systemd, e.g. in a container or a terminal) nothing is
sent and every call returns False: the same program runs everywhere.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(env: Mapping[str, str]) -> str | bytes | None:
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):  # Linux abstract namespace: a leading NUL byte instead of '@'
        return b"\0" + path[1:].encode()
    if not path.startswith("/"):
        return None  # vsock addresses (vsock:CID:PORT) are for VMs, not services on a host
    return path


class Notifier:
    """Sends notifications to the service manager named in the environment (nothing when none).

    ``env`` is read once, at construction (systemd sets it before the process starts); pass a
    mapping in tests. Failures to send are logged once and never raised: a service must not stop
    because its supervisor's socket went away.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _address(env)
        self._watchdog_usec = _watchdog_usec(env)
        self._failed_logged = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half of ``WatchdogSec`` (None when no watchdog is set)."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2e6

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (``KEY=VALUE``) in one datagram; True when it was sent."""
        if self.address is None or not lines:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:
            if not self._failed_logged:
                self._failed_logged = True
                log.warning("cannot notify the service manager at %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    """``WATCHDOG_USEC`` when it is meant for this process (``WATCHDOG_PID`` absent or ours)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None  # set for a parent (e.g. a wrapper script): not ours to feed
    return usec if usec > 0 else None
