"""The state machine's cost per probe result: ``Network.observe`` at national scale.

Every probe result of the daemon goes through ``Network.observe`` (10,000 links: 1,000 calls a
second at a 10 s interval), so its cost per call is the figure to keep: measured here on the
bench config of N links (one ICMP probe each, ~14 kecamatan per kabupaten), in process, with
no I/O. Three loads, each over every link, ``--rounds`` rounds, repeated ``--repeat`` times
(median and best of the repeats):

- ``steady``: every link answers, every round (what nearly every result is);
- ``lossy``: one link in ten loses an echo of five (the quality judgement's longer path);
- ``cut``: one kabupaten's kecamatan cut and restored (state changes, alerts, roll-up).

    .venv/bin/python bench/observe.py --targets 10000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common as c

from linkmon.config import Config, load_config
from linkmon.state import Network
from probes import ProbeResult


def result(target: str, lost: int = 0) -> ProbeResult:
    received = 5 - lost
    return ProbeResult(
        kind="icmp",
        target=target,
        success=received > 0,
        packets_sent=5,
        packets_received=received,
        rtts=(0.0004,) * received,
        duration=0.0004,
    )


def run(config: Config, rounds: int, plan: Callable[[int, int], int]) -> float:
    """CPU µs per ``observe`` call over ``rounds`` rounds; ``plan(round, link)``: echoes lost."""
    links = [(link.id, link.probes[0].target_label) for link in config.links]
    answers = {target: [result(target, lost) for lost in range(6)] for _, target in links}
    now = time.time()
    network = Network(config, now)
    for link_id, target in links:
        network.observe(link_id, 0, answers[target][0], now)
    network.tick(now)
    spent = 0.0
    for n in range(rounds):
        now += 10.0
        results = [
            (link_id, answers[target][plan(n, i)]) for i, (link_id, target) in enumerate(links)
        ]
        began = time.process_time()  # CPU time: other work on the machine counts less
        for link_id, answer in results:
            network.observe(link_id, 0, answer, now)
        spent += time.process_time() - began
        network.tick(now)  # not counted: once a second, not per result
    return spent / (rounds * len(links)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "observe.yml"
        targets = c.loopback_targets(args.targets)
        c.write_config(path, targets, interval=10, timeout=2, count=5, spacing=0.1)
        config = load_config(path)
    cut = {i for i, link in enumerate(config.links) if link.from_site.startswith("kec-")}
    cut = set(sorted(cut)[:14])  # about one kabupaten's kecamatan
    loads: dict[str, Callable[[int, int], int]] = {
        "steady": lambda n, i: 0,
        "lossy": lambda n, i: 1 if i % 10 == 0 else 0,
        "cut": lambda n, i: 5 if i in cut and n % 8 < 4 else 0,
    }
    gc.freeze()  # as the daemon does: the config stays out of the collector's reach
    print(f"Network.observe, {len(config.links)} links, {args.rounds} rounds, CPU µs per call")
    for name, plan in loads.items():
        times = [run(config, args.rounds, plan) for _ in range(args.repeat)]
        print(f"  {name:7} median {statistics.median(times):6.2f}  best {min(times):6.2f}")


if __name__ == "__main__":
    main()
