"""A flapping link: down for a period, up for a period, until the lab restores it.

Started by :meth:`linkmon.lab.lab.Lab.flap` inside the link's ``from`` namespace (so ``lab
down`` finds it); stopped with SIGTERM by :meth:`~linkmon.lab.lab.Lab.restore`, which then
leaves the link up.

Run: ``python -m linkmon.lab.flap --prefix P --state-root DIR --link ID --period SECONDS``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from linkmon.lab.lab import Lab
from linkmon.lab.netns import report_ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--state-root", required=True, type=Path)
    parser.add_argument("--link", required=True)
    parser.add_argument("--period", required=True, type=float)
    args = parser.parse_args(argv)
    lab = Lab.load(args.prefix, args.state_root)
    lab.topology.link(args.link)
    report_ready()
    up = True
    while True:
        up = not up
        lab.set_link_state(args.link, up=up)
        time.sleep(args.period)


if __name__ == "__main__":
    main()
