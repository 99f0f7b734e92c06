"""linkmon's probe engine: ICMP, TCP and HTTP(S) probes behind one small interface.

``Prober.run(spec, timeout)`` runs any probe and returns a :class:`ProbeResult`; a failed target
is a result with a :class:`Failure` reason, only set-up faults raise :class:`ProbeSetupError`.
"""

from probes.base import Failure, ProbeResult, ProbeSetupError
from probes.http import HttpSpec
from probes.icmp import IcmpEngine, IcmpSpec
from probes.prober import KINDS, Prober, ProbeSpec, spec_from_target
from probes.tcp import TcpSpec

__all__ = [
    "KINDS",
    "Failure",
    "HttpSpec",
    "IcmpEngine",
    "IcmpSpec",
    "ProbeResult",
    "ProbeSetupError",
    "ProbeSpec",
    "Prober",
    "TcpSpec",
    "spec_from_target",
]
