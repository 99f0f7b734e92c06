"""`linkmon report`: a month's availability per link and office, as text, CSV or HTML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ..config import Config
from ..report import MonthNotBegun, build_report
from ..storage import StorageError
from .common import UsageError, config_or_exit, open_storage
from .options import ConfigOption, LanguageOption
from .report_formats import FORMATS, LANGUAGES, render

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_month(text: str) -> tuple[int, int]:
    match = _MONTH.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise UsageError(f"--month must be YYYY-MM such as 2026-11, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def run_report(
    config: Config,
    month: str,
    fmt: str = "text",
    output: Path | None = None,
    language: str | None = None,
    now: float | None = None,
) -> int:
    """`linkmon report` without the command line; returns the exit code."""
    lang = language or config.agent.language
    try:
        if lang not in LANGUAGES:
            raise UsageError(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
        chosen = next((f for f in FORMATS if f == fmt), None)
        if chosen is None:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        year, number = parse_month(month)
        with open_storage(config) as storage:
            report = build_report(config, storage, year, number, now)
    except (UsageError, MonthNotBegun, StorageError) as exc:
        typer.echo(f"linkmon report: {exc}", err=True)
        return 2
    text = render(report, chosen, lang)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return 0
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        typer.echo(f"linkmon report: cannot write {output}: {exc.strerror}", err=True)
        return 2
    return 0


def report_command(
    config: ConfigOption,
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (e.g. 2026-11).")],
    fmt: Annotated[str, typer.Option("--format", help="text, csv or html.")] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    lang: LanguageOption = None,
) -> None:
    """Availability per link and per office for a month: 24×7 and within service hours."""
    raise typer.Exit(run_report(config_or_exit(config), month, fmt, output, lang))
