"""Central's store: the durable record of applied events and what was derived from them."""
