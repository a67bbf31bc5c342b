"""``edge check``: connect to every PLC, read every tag once, print what came back (like ``telegraf --test``).

The first thing an engineer runs at a new line: it shows, per machine and tag, the address
that was read, the raw registers or value, what it decodes to (a state through the state map),
and the round trip, or the reason it failed. Connections are checked concurrently, each bounded
by its machines' timeouts, so one dead PLC does not hold up the table.
"""

from __future__ import annotations

import asyncio

from edge.collectors.base import CheckRow
from edge.collectors.registry import build_collectors
from edge.config import EdgeConfig

HEADERS = ("machine", "tag", "address", "raw", "decoded", "latency / error")


async def check(cfg: EdgeConfig) -> list[CheckRow]:
    """Every tag of every machine read once, in the order of the configuration file."""
    collectors = build_collectors(cfg)
    results = await asyncio.gather(*(c.check() for c in collectors))
    order = {m.id: i for i, m in enumerate(cfg.machines)}
    rows = [row for result in results for row in result]
    return sorted(rows, key=lambda r: order.get(r.machine_id, len(order)))


def format_table(rows: list[CheckRow]) -> str:
    """A plain-text table, one row per tag, columns as wide as their widest cell."""
    cells = [HEADERS] + [
        (
            r.machine_id, r.tag, r.address, r.raw, r.decoded,
            f"ERROR: {r.error}" if r.error else (f"{r.latency_ms:.1f} ms" if r.latency_ms is not None else ""),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS) - 1)]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(HEADERS[-1]))
    failed = sum(1 for r in rows if r.error)
    machines = len({r.machine_id for r in rows})
    lines.append("")
    lines.append(f"{machines} machines, {len(rows)} tags, {failed} failed" if failed else
                 f"{machines} machines, {len(rows)} tags, all read")
    return "\n".join(line.rstrip() for line in lines)
