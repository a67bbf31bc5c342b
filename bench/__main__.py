"""``python -m bench [name ...] [--quick]``: run the benchmarks and print one table each.

Options after the names (``--quick`` and any other) go to every benchmark run; each is also runnable
alone with all its options: ``python -m bench.ingest --help``.
"""

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
    "projection": "bench.projection",
    "foresight": "bench.foresight",
    "orders": "bench.orders",
    "pages": "bench.pages",
    "chaos": "bench.chaos",
    "cluster": "bench.cluster",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="plantpulse benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    args, extra = parser.parse_known_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        failed |= module.main(list(extra))
    return failed


if __name__ == "__main__":
    sys.exit(main())
