"""How each fault is made, apart from who asks for it (the :class:`~linkmon.lab.lab.Lab`).

- cut: the link's devices are set down at both ends (carrier lost; routes via it vanish,
  so probes see "unreachable", as when a cable is pulled).
- blackhole: nftables drops every non-ARP frame arriving at either end, on the device's
  ingress hook; the devices stay up and neighbours resolve, so packets vanish silently
  (probes see "timeout", as when a telco's router drops the traffic).
- loss: the same hook drops frames with ``numgen random``. The ratio is what a round trip
  (an echo and its reply) loses: on ``both`` each direction drops ``1 - sqrt(1 - ratio)``;
  one-way, that direction drops ``ratio``. ARP is spared so loss stays what was asked.
- delay and jitter: the link's userspace bridge (see :mod:`linkmon.lab.bridge`).
- refuse: nftables in the site's namespace answers its service ports with a TCP reset,
  while ICMP still answers (pusat blocking a kabupaten's access: the line is up, the
  service refused).
- flap: a :mod:`linkmon.lab.flap` process cuts and restores the link every period.
"""

from __future__ import annotations

import json
import math
import socket
from typing import Any

from linkmon.lab.topology import DIRECTIONS, LabError

_RANDOM_SCALE = 10_000
"""numgen range: loss is applied in steps of 0.01 %."""


def one_way_loss(ratio: float, direction: str) -> dict[str, float]:
    """Drop ratio per direction so that a round trip loses ``ratio``."""
    if not 0.0 <= ratio <= 1.0:
        raise LabError(f"loss must be between 0 and 100 %, got {ratio * 100:g} %")
    check_direction(direction)
    if direction == "both":
        each = 1.0 - math.sqrt(1.0 - ratio)
        return {"forward": each, "reverse": each}
    return {direction: ratio}


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise LabError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")


def ingress_script(table: str, chain: str, device: str, blackhole: bool, loss: float) -> str:
    """nft transaction that (re)writes one device's ingress chain; empty rules remove it."""
    hook = f'{{ type filter hook ingress device "{device}" priority 0; }}'
    lines = [f"add table netdev {table}", f"add chain netdev {table} {chain} {hook}"]
    if blackhole or loss >= 1.0:
        rule = "meta protocol != arp drop"
    elif loss > 0:
        threshold = round(loss * _RANDOM_SCALE)
        rule = f"meta protocol != arp numgen random mod {_RANDOM_SCALE} < {threshold} drop"
    else:
        return "\n".join([*lines, f"delete chain netdev {table} {chain}"]) + "\n"
    return (
        "\n".join(
            [
                *lines,
                f"flush chain netdev {table} {chain}",
                f"add rule netdev {table} {chain} {rule}",
            ]
        )
        + "\n"
    )


def refuse_script(table: str, ports: tuple[int, ...], refuse: bool) -> str:
    """nft transaction that rejects (TCP reset) or again accepts the site's service ports."""
    hook = "{ type filter hook input priority 0; }"
    lines = [f"add table inet {table}", f"add chain inet {table} refuse {hook}"]
    if refuse:
        port_set = ", ".join(str(p) for p in ports)
        lines += [
            f"flush chain inet {table} refuse",
            f"add rule inet {table} refuse tcp dport {{ {port_set} }} reject with tcp reset",
        ]
    else:
        lines.append(f"delete chain inet {table} refuse")
    return "\n".join(lines) + "\n"


def bridge_request(control: str, request: dict[str, Any]) -> dict[str, Any]:
    """Send one JSON request to a link's bridge and return its JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.settimeout(5.0)
        try:
            conn.connect(control)
            conn.sendall(json.dumps(request).encode())
            reply: dict[str, Any] = json.loads(conn.recv(65536))
        except (OSError, ValueError) as exc:
            raise LabError(f"the link's bridge at {control} does not answer: {exc}") from exc
    if "error" in reply:
        raise LabError(f"the bridge refused {request}: {reply['error']}")
    return reply
