"""The `linkmon` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from .config import load_config_apart
from .history import config_or_exit

app = typer.Typer(
    help="Watches Dukcapil WAN links: probes, link state, alerts, Prometheus metrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="linkmon YAML config file.")]


@app.command()
def run(
    config: ConfigOption,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    user: Annotated[
        str | None, typer.Option(help="Started as root: drop to this user after opening sockets.")
    ] = None,
) -> None:
    """Run the daemon: probe every link, serve /metrics and the status API, send alerts."""
    from .daemon import run_daemon

    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
    cfg = config_or_exit(config, load_config_apart)  # a daemon keeps no parse's heap
    raise typer.Exit(asyncio.run(run_daemon(config, cfg, user=user)))


@app.command("check-config")
def check_config(config: ConfigOption) -> None:
    """Validate a config file; list every error by its path and exit non-zero if any."""
    cfg = config_or_exit(config)
    probes = sum(len(link.probes) for link in cfg.links)
    typer.echo(f"{config}: OK ({len(cfg.sites)} sites, {len(cfg.links)} links, {probes} probes)")


@app.command()
def inventory(
    offices: Annotated[Path, typer.Argument(help="CSV export: one row per kecamatan office.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the agents' configs.")],
    template: Annotated[
        Path | None, typer.Option("--template", help="What every agent shares (YAML).")
    ] = None,
) -> None:
    """One checked config per kabupaten agent from a spreadsheet of offices; nothing is
    written unless every row is good (bad rows listed by line and column, exit 2)."""
    from .inventory import InventoryError, run_inventory

    try:
        written = run_inventory(offices, out, template)
    except InventoryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def probe(
    kind: Annotated[str, typer.Argument(help="icmp, tcp or http.")],
    target: Annotated[str, typer.Argument(help="Address, host:port or URL.")],
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 2.0,
    count: Annotated[int, typer.Option(help="ICMP echoes.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run one probe now and print what it measured."""
    from probes import Prober, ProbeResult, ProbeSetupError, spec_from_target

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


def _result_dict(result) -> dict[str, object]:  # type: ignore[no-untyped-def]
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


def _result_text(result) -> str:  # type: ignore[no-untyped-def]
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
        from datetime import UTC, datetime

        expiry = datetime.fromtimestamp(result.tls_cert_expiry, UTC)
        lines.append(f"  tls certificate expires: {expiry:%Y-%m-%d %H:%M UTC}")
    return "\n".join(lines)


from .fleet.command import fleet_command  # noqa: E402
from .history import history_command  # noqa: E402
from .lab.cli import app as lab_app  # noqa: E402  (kept beside the commands it adds)
from .paths import trace_command  # noqa: E402
from .report import report_command  # noqa: E402
from .status import status_command  # noqa: E402

app.command("status")(status_command)
app.command("history")(history_command)
app.command("report")(report_command)
app.command("trace")(trace_command)
app.command("fleet")(fleet_command)
app.add_typer(lab_app, name="lab", help="Simulated Dukcapil WAN in network namespaces.")


def main() -> None:
    app()
