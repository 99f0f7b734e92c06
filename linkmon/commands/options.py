"""Command-line options several commands share, spelt and explained the same way in each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="linkmon YAML config file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LanguageOption = Annotated[
    str | None, typer.Option(help="id or en; default: the agent's language.")
]
