"""Central scaled past one process: ingest workers owning gateways by leases, API replicas following the store."""
