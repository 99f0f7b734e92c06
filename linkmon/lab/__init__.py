"""The lab: a simulated Dukcapil WAN in network namespaces, with faults on demand.

``linkmon lab up -f LAB.yml`` builds it, ``linkmon lab fault LINK cut`` breaks a link,
``linkmon lab down`` removes it. From Python (tests, the demo)::

    lab = Lab.load("lm")
    lab.cut("kec-krayan--kab")
    lab.restore("kec-krayan--kab")
"""

from linkmon.lab.lab import SHIPPED_LAB, Lab, PingResult
from linkmon.lab.topology import LabError, Topology, TopologyError, load_topology

__all__ = [
    "SHIPPED_LAB",
    "Lab",
    "LabError",
    "PingResult",
    "Topology",
    "TopologyError",
    "load_topology",
]
