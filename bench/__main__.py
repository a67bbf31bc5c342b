"""``python -m bench [name ...]``: run the benchmarks and print one table each."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module with a ``main(argv) -> int``; each module is runnable alone too
BENCHMARKS: dict[str, str] = {
    "outbox": "bench.outbox",
    "collect_modbus": "bench.collect_modbus",
    "collect_opcua": "bench.collect_opcua",
    "forward": "bench.forward",
    "ingest": "bench.ingest",
    "api": "bench.api",
    "fault_alert": "bench.fault_alert",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="plantpulse benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    if not names:
        print("no benchmarks yet")
        return 0
    failed = 0
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        failed |= module.main([])
    return failed


if __name__ == "__main__":
    sys.exit(main())
