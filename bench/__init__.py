"""Benchmarks: each measures plantpulse beside an in-run baseline and prints a table (docs/performance.md)."""
