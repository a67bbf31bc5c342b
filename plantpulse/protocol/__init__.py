"""Shared wire protocol between edge gateways and the central service (docs/protocol.md)."""
