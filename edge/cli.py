"""``python -m edge``: the edge gateway's command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge", description="plantpulse edge gateway")
    parser.add_argument("command", choices=["check", "run"], help="check a config against the PLCs, or run")
    parser.add_argument("--config", required=True, help="gateway configuration file (YAML)")
    parser.parse_args(argv)
    print("error: the edge gateway is not built yet (see the open issues)", file=sys.stderr)
    return 2
