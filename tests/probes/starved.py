"""Run probes in a process with no file descriptor left: the child side of test_agent_faults.py.

Usage: ``starved.py '{"icmp_mode": "raw", "warm": [[KIND, SPEC], ...], "jobs": [...]}'`` with
KIND one of icmp, tcp, http, trace. The ``warm`` probes run first, with descriptors to spare
(what Python imports on first use is then loaded, and the ICMP socket of an unbound family is
open); then the process lowers its open-file limit, fills every descriptor it may have, runs
the ``jobs`` and prints their results as JSON. A fault of its own is a child that crashes, which
the test sees; a descriptor limit is per process, so this cannot run inside pytest.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
from typing import Any

from probes import HttpSpec, IcmpSpec, Prober, ProbeResult, TcpSpec
from probes.trace import TraceResult, TraceSpec, trace

SPECS: dict[str, Any] = {"icmp": IcmpSpec, "tcp": TcpSpec, "http": HttpSpec}
LIMIT = 128  # open-file soft limit while starved: filling it takes a moment, not a second


async def run(prober: Prober, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "trace":
        traced: TraceResult = await trace(TraceSpec(**spec))
        failure = traced.failure.value if traced.failure else None
        return {"success": traced.reached, "failure": failure, "detail": traced.stops()}
    result: ProbeResult = await prober.run(SPECS[kind](**spec), 2.0)
    failure = result.failure.value if result.failure else None
    return {"success": result.success, "failure": failure, "detail": result.detail}


async def main(plan: dict[str, Any]) -> None:
    async with Prober(icmp_mode=plan.get("icmp_mode", "auto")) as prober:
        warm = [await run(prober, kind, spec) for kind, spec in plan["warm"]]
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))
        taken = []
        try:
            while True:
                taken.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            starved = [await run(prober, kind, spec) for kind, spec in plan["jobs"]]
        finally:
            for fd in taken:
                os.close(fd)
    print(json.dumps({"warm": warm, "starved": starved, "filled": len(taken)}))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
