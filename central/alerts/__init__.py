"""Failure alerts (pure): rules, lifecycle and notification formats; see docs/alerts.md."""
