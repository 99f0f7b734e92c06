"""Run probes in this process and print the results as JSON: the child side of conftest.run_probes.

Tests run it as another user (ICMP without privileges) or inside a network namespace (a DNS
failure that sends nothing). Usage: ``run_probe.py TIMEOUT '[["icmp", {"address": ...}], ...]'``.
Exits 3 with the message on stderr when a probe cannot be set up.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from probes import HttpSpec, IcmpSpec, Prober, ProbeSetupError, TcpSpec

SPECS: dict[str, Any] = {"icmp": IcmpSpec, "tcp": TcpSpec, "http": HttpSpec}


async def main(timeout: float, jobs: list[tuple[str, dict[str, Any]]]) -> None:
    async with Prober() as prober:
        results = [await prober.run(SPECS[kind](**spec), timeout) for kind, spec in jobs]
        modes = [engine.mode for engine in prober.icmp_engines]
    print(
        json.dumps(
            {
                "modes": modes,
                "results": [
                    {
                        "success": r.success,
                        "failure": r.failure and r.failure.value,
                        "detail": r.detail,
                        "sent": r.packets_sent,
                        "received": r.packets_received,
                        "rtts": list(r.rtts),
                    }
                    for r in results
                ],
            }
        )
    )


if __name__ == "__main__":
    try:
        asyncio.run(main(float(sys.argv[1]), json.loads(sys.argv[2])))
    except ProbeSetupError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
