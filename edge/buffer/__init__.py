"""The edge outbox: a durable SQLite store of events until the consumer confirms them."""
