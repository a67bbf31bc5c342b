"""Central's HTTP API (FastAPI): ``/api/v1``, the live stream, health and metrics."""
