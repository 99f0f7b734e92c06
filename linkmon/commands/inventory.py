"""`linkmon inventory`: one checked config per kabupaten agent from a spreadsheet of offices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..inventory import InventoryError, run_inventory


def inventory_command(
    offices: Annotated[Path, typer.Argument(help="CSV export: one row per kecamatan office.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the agents' configs.")],
    template: Annotated[
        Path | None, typer.Option("--template", help="What every agent shares (YAML).")
    ] = None,
) -> None:
    """One checked config per kabupaten agent from a spreadsheet of offices; nothing is
    written unless every row is good (bad rows listed by line and column, exit 2)."""
    try:
        written = run_inventory(offices, out, template)
    except InventoryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}")
