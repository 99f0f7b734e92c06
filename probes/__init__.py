"""linkmon's probe engine: ICMP, TCP and HTTP(S) probes behind one small interface.

Every kind is a :class:`Probe` (``begin(spec, deadline, report)``), listed in :data:`REGISTRY`;
:class:`Prober` runs any of them: ``begin`` for a scheduler that owns the deadlines, ``run(spec,
timeout)`` to await one. A failed target is a result with a :class:`Failure` reason (the agent's
own faults included: :attr:`Failure.AGENT`); only set-up faults are :class:`ProbeSetupError`.
"""

from probes.base import AgentFault, Failure, Probe, ProbeResult, ProbeSetupError, Report, Round
from probes.http import HttpSpec
from probes.icmp import IcmpSpec
from probes.icmp_engine import IcmpEngine
from probes.prober import Prober
from probes.registry import KINDS, REGISTRY, ProbeSpec, spec_from_target
from probes.tcp import TcpSpec

__all__ = [
    "KINDS",
    "REGISTRY",
    "AgentFault",
    "Failure",
    "HttpSpec",
    "IcmpEngine",
    "IcmpSpec",
    "Probe",
    "ProbeResult",
    "ProbeSetupError",
    "ProbeSpec",
    "Prober",
    "Report",
    "Round",
    "TcpSpec",
    "spec_from_target",
]
