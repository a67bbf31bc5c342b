"""The edge outbox: a durable SQLite store of events until the consumer confirms them.

``Outbox`` is the whole interface (docs/outbox.md); the modules behind it are ``schema``
(tables and connection settings), ``writer`` (one group-commit transaction), ``bounds``
(pure coalesce and drop rules), ``tail`` (recent events in memory) and ``records``.
"""

from edge.buffer.errors import OutboxClosedError, OutboxError, OutboxFullError
from edge.buffer.outbox import Outbox
from edge.buffer.records import OutboxStats, StoredEvent

__all__ = ["Outbox", "OutboxClosedError", "OutboxError", "OutboxFullError", "OutboxStats", "StoredEvent"]
