"""ProbeResult's derived figures (loss, RTT statistics, jitter), the failure vocabulary, and
which OS errors are the agent's own fault."""

from __future__ import annotations

import dataclasses
import errno
import math
import socket
import ssl

import httpcore
import httpx
import pytest

from probes import Failure, ProbeResult
from probes.base import agent_fault


def icmp(sent: int, rtts: tuple[float, ...]) -> ProbeResult:
    return ProbeResult(
        kind="icmp",
        target="198.18.1.1",
        success=bool(rtts),
        packets_sent=sent,
        packets_received=len(rtts),
        rtts=rtts,
    )


def test_rtt_statistics_and_jitter() -> None:
    result = icmp(4, (0.010, 0.030, 0.020))
    assert result.loss == pytest.approx(0.25)
    assert (result.rtt_min, result.rtt_max) == (0.010, 0.030)
    assert result.rtt_avg == pytest.approx(0.020)
    assert result.rtt_stddev == pytest.approx(math.sqrt((0.01**2 + 0.01**2) / 3))
    assert result.jitter == pytest.approx((0.020 + 0.010) / 2)  # |30-10|, |20-30|


def test_one_reply_has_statistics_but_no_jitter() -> None:
    result = icmp(1, (0.005,))
    assert (result.loss, result.rtt_avg, result.rtt_stddev, result.jitter) == (
        0.0,
        0.005,
        0.0,
        None,
    )


def test_no_reply_has_full_loss_and_no_statistics() -> None:
    result = icmp(3, ())
    assert result.loss == 1.0
    assert (result.rtt_min, result.rtt_max, result.rtt_avg, result.rtt_stddev) == (None,) * 4


def test_probes_without_echoes_have_no_loss() -> None:
    result = ProbeResult(kind="tcp", target="198.18.1.1:443", success=True, duration=0.002)
    assert result.loss is None and result.jitter is None


def test_result_is_immutable() -> None:
    result = icmp(1, (0.001,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.success = False  # type: ignore[misc]


def test_failure_reasons_are_short_lowercase_label_values() -> None:
    assert f"{Failure.TIMEOUT}" == "timeout"  # formats as the bare label value
    for reason in Failure:
        assert reason.value.isidentifier() and reason.value.islower()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EMFILE, "too many open files (EMFILE)"),
        (errno.ENFILE, "too many open files on this host (ENFILE)"),
        (errno.ENOBUFS, "no buffer space (ENOBUFS)"),
        (errno.ENOMEM, "out of memory (ENOMEM)"),
        (errno.EPERM, "not permitted by this host (EPERM: its own firewall?)"),
        (errno.EACCES, "permission denied by this host (EACCES: its own firewall?)"),
    ],
)
def test_what_ran_out_on_the_agent_is_named_however_deep_it_is_wrapped(
    code: int, words: str
) -> None:
    error = OSError(code, "as the system says it")
    assert agent_fault(error) == words
    try:  # how httpx reports what httpcore caught: raised from, inside a group
        try:
            raise ExceptionGroup("attempts", [error])
        except ExceptionGroup as group:
            raise httpcore.ConnectError(str(group)) from group
    except httpcore.ConnectError as core:
        wrapped = httpx.ConnectError(str(core))
        wrapped.__cause__ = core
    assert agent_fault(wrapped) == words


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        OSError(errno.EHOSTUNREACH, "no route"),
        TimeoutError(),
        ssl.SSLCertVerificationError(1, "certificate verify failed"),  # errno 1 is not EPERM
        socket.gaierror(socket.EAI_NONAME, "unknown name"),
        socket.herror(1, "host not found"),
    ],
)
def test_faults_of_the_target_or_the_path_are_not_the_agents(error: BaseException) -> None:
    assert agent_fault(error) is None
