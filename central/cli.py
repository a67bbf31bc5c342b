"""``python -m central``: the central service's command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m central", description="plantpulse central service")
    parser.add_argument("command", choices=["run"], help="run the central service")
    parser.add_argument("--config", required=True, help="central configuration file (YAML)")
    parser.parse_args(argv)
    print("error: the central service is not built yet (see the open issues)", file=sys.stderr)
    return 2
