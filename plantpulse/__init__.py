"""Shared pieces of plantpulse that every role uses (version, configuration files)."""

__version__ = "0.1.0"
