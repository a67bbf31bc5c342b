"""The plantpulse central service: ingest, machine status, progress, alerts, API (docs/central.md)."""
