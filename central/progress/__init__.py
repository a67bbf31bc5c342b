"""Pure domain logic of the central service: status, downtime, progress, alert rules."""
