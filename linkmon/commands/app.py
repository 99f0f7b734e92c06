"""The typer app behind `linkmon`: every command but the daemon's own front door.

Each command lives in a module of its own; this one only puts them under one name. The
commands read the config or the state database, or ask the daemon over its HTTP API, never
the other way round.
"""

from __future__ import annotations

import typer

from ..lab.cli import app as lab_app
from .check import check_config
from .history import history_command
from .inventory import inventory_command
from .probe import probe
from .report import report_command
from .status import status_command
from .trace import trace_command

app = typer.Typer(
    help="Watches Dukcapil WAN links: probes, link state, alerts, Prometheus metrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def run(ctx: typer.Context) -> None:
    """Run the daemon: probe every link, serve /metrics and the status API, send alerts.

    Its options: linkmon run --help. The linkmon command starts the daemon without this app
    (so that it loads no CLI library); this entry lists it here and serves callers of the app.
    """
    from .run import main

    raise typer.Exit(main(ctx.args))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def fleet(ctx: typer.Context) -> None:
    """Serve the status page and /api/v1/status for the whole fleet, read from Prometheus.

    Its options: linkmon fleet --help. Started without this app, as linkmon run is.
    """
    from .fleet import main

    raise typer.Exit(main(ctx.args))


app.command("check-config")(check_config)
app.command("probe")(probe)
app.command("status")(status_command)
app.command("history")(history_command)
app.command("report")(report_command)
app.command("trace")(trace_command)
app.command("inventory")(inventory_command)
app.add_typer(lab_app, name="lab", help="Simulated Dukcapil WAN in network namespaces.")
