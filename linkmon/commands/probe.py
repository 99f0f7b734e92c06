"""`linkmon probe`: one probe now, printed — the engine the daemon uses, run once by hand."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from probes import Prober, ProbeResult, ProbeSetupError, spec_from_target

from .options import JsonOption


def probe(
    kind: Annotated[str, typer.Argument(help="icmp, tcp or http.")],
    target: Annotated[str, typer.Argument(help="Address, host:port or URL.")],
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 2.0,
    count: Annotated[int, typer.Option(help="ICMP echoes.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Run one probe now and print what it measured."""
    try:
        spec = spec_from_target(kind, target, count=count)
    except ValueError as exc:
        typer.echo(f"linkmon probe: {exc}", err=True)
        raise typer.Exit(2) from None

    async def once() -> ProbeResult:
        async with Prober() as prober:
            return await prober.run(spec, timeout)

    try:
        result = asyncio.run(once())
    except ProbeSetupError as exc:
        typer.echo(f"linkmon probe: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(_result_dict(result), indent=2))
    else:
        typer.echo(_result_text(result))
    raise typer.Exit(0 if result.success else 1)


def _result_dict(result: ProbeResult) -> dict[str, object]:
    return {
        "kind": result.kind,
        "target": result.target,
        "success": result.success,
        "failure": result.failure.value if result.failure else None,
        "detail": result.detail,
        "duration_seconds": result.duration,
        "packets_sent": result.packets_sent,
        "packets_received": result.packets_received,
        "loss": result.loss,
        "rtts_seconds": list(result.rtts),
        "http_status": result.http_status,
        "tls_cert_expiry": result.tls_cert_expiry,
        "phases": result.phases,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.3f} ms"


def _result_text(result: ProbeResult) -> str:
    reason = result.failure.value if result.failure else "?"
    verdict = "OK" if result.success else f"FAILED ({reason})"
    lines = [f"{result.kind} {result.target}: {verdict}"]
    if result.detail:
        lines.append(f"  detail: {result.detail}")
    if result.kind == "icmp":
        loss = result.loss if result.loss is not None else 1.0
        lines.append(
            f"  {result.packets_sent} sent, {result.packets_received} received, {loss:.0%} loss"
        )
        if result.rtts:
            lines.append(
                f"  rtt min/avg/max/stddev = {_ms(result.rtt_min)} / "
                f"{_ms(result.rtt_avg)} / {_ms(result.rtt_max)} / "
                f"{_ms(result.rtt_stddev)}"
            )
    else:
        lines.append(f"  time: {_ms(result.duration)}")
    if result.http_status is not None:
        lines.append(f"  http status: {result.http_status}")
    if result.tls_cert_expiry is not None:
        expiry = datetime.fromtimestamp(result.tls_cert_expiry, UTC)
        lines.append(f"  tls certificate expires: {expiry:%Y-%m-%d %H:%M UTC}")
    return "\n".join(lines)
