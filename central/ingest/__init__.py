"""Central ingest: apply every gateway's events exactly once."""
