"""The outbox's errors.

::

    OutboxError                 anything the outbox cannot do; the message says what to fix
    ├── OutboxClosedError       used after close() (or while closing)
    └── OutboxFullError         the disk is full and nothing could be freed to store an emit

sqlite3 errors are translated here, at the adapter, with ``raise ... from``; a full disk
(SQLITE_FULL) is not an error at all while old events can still be dropped to make room.
"""

from __future__ import annotations


class OutboxError(Exception):
    """The outbox could not do what was asked; the message says why and what to fix."""


class OutboxClosedError(OutboxError):
    """The outbox was used after ``close()`` started."""


class OutboxFullError(OutboxError):
    """The disk (or ``max_pages``) is full even after dropping every held event."""
