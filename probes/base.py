"""What every probe kind returns.

Each kind gets a target and a deadline (see :class:`probes.Prober`) and returns a
:class:`ProbeResult`. A failed target is data (``success=False`` with a :class:`Failure`
reason), never an exception; only set-up faults (no permission for a raw socket, a malformed
address) raise :class:`ProbeSetupError`.
This package never imports ``linkmon``: the daemon depends on the probes, not the reverse.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


class Failure(enum.StrEnum):
    """Why a probe failed: a fixed vocabulary, safe to use as a metric label."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    DNS = "dns"
    TLS = "tls"
    HTTP_STATUS = "http_status"
    BODY_MISMATCH = "body_mismatch"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    PROTOCOL = "protocol"
    ERROR = "error"


class ProbeSetupError(Exception):
    """The probe cannot run at all here (permissions, bad address); the message names the fix."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe round measured.

    ``duration`` is the figure exported as ``linkmon_probe_duration_seconds``: the mean echo
    RTT for ICMP, the connect time for TCP, the whole request for HTTP.
    """

    kind: str
    target: str
    success: bool
    duration: float | None = None
    failure: Failure | None = None
    detail: str = ""
    packets_sent: int = 0
    packets_received: int = 0
    rtts: tuple[float, ...] = ()
    phases: dict[str, float] = field(default_factory=dict)
    http_status: int | None = None
    tls_cert_expiry: float | None = None

    @property
    def loss(self) -> float | None:
        """Share of echoes lost (0–1); ``None`` for probes that send no echoes."""
        if self.packets_sent == 0:
            return None
        return 1.0 - self.packets_received / self.packets_sent

    def rtt_stats(self) -> tuple[float, float, float, float] | None:
        """min, avg, max and population stddev of the echo RTTs; ``None`` without replies.

        One cheap pass: the daemon asks for these on every round of every target, and
        ``statistics.pstdev`` (exact fractions) cost more than the echoes themselves.
        """
        rtts = self.rtts
        if not rtts:
            return None
        avg = math.fsum(rtts) / len(rtts)
        variance = math.fsum([(rtt - avg) ** 2 for rtt in rtts]) / len(rtts)
        return min(rtts), avg, max(rtts), math.sqrt(variance)

    @property
    def rtt_min(self) -> float | None:
        return min(self.rtts) if self.rtts else None

    @property
    def rtt_max(self) -> float | None:
        return max(self.rtts) if self.rtts else None

    @property
    def rtt_avg(self) -> float | None:
        return math.fsum(self.rtts) / len(self.rtts) if self.rtts else None

    @property
    def rtt_stddev(self) -> float | None:
        stats = self.rtt_stats()
        return None if stats is None else stats[3]

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference between consecutive RTTs (RFC 3550 style, unsmoothed)."""
        rtts = self.rtts
        if len(rtts) < 2:
            return None
        return math.fsum([abs(b - a) for a, b in zip(rtts, rtts[1:], strict=False)]) / (
            len(rtts) - 1
        )
