"""The plantpulse edge gateway: read PLCs, derive events, store and forward them (docs/edge.md)."""
