"""`linkmon trace`: a link's path now, beside the last good path the daemon recorded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from probes import ProbeSetupError
from probes.trace import MODES, Reply, TraceResult, trace

from ..alerts.text import date
from ..config import Config, Link
from ..pathchange import compare, reply_text, where
from ..paths import PathBook, trace_spec
from .common import config_or_exit
from .options import ConfigOption, JsonOption, LanguageOption

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "same": "sama dengan jalur baik terakhir",
        "no_good": "belum ada jalur baik yang tercatat",
        "title": "Trace {link} ({office} – {peer}, {network}): {mode} ke {target} dari {source}",
        "header": "hop  sekarang                rtt        jalur baik terakhir ({when})",
        "header_no_good": "hop  sekarang                rtt",
    },
    "en": {
        "same": "same as the last good path",
        "no_good": "no good path recorded yet",
        "title": "Trace {link} ({office} – {peer}, {network}): {mode} to {target} from {source}",
        "header": "hop  now                     rtt        last good path ({when})",
        "header_no_good": "hop  now                     rtt",
    },
}


def render(
    config: Config, link: Link, result: TraceResult, good: TraceResult | None, language: str
) -> str:
    """The trace beside the last good path, for a terminal."""
    words = _WORDS[language]
    office, peer = config.site(link.from_site), config.site(link.to_site)
    port = f":{result.port}" if result.port else ""
    lines = [
        words["title"].format(
            link=link.id,
            office=office.name,
            peer=peer.name,
            network=link.network,
            mode=result.mode,
            target=f"{result.target}{port}",
            source=result.source or "?",
        )
    ]
    if good is not None:
        when = date(good.started_at, office.timezone, language)
        lines.append(words["header"].format(when=when))
    else:
        lines.append(words["header_no_good"])
    for index in range(max(len(result.hops), len(good.path) if good else 0)):
        hop = result.hops[index] if index < len(result.hops) else None
        address = (hop.address or "*") if hop else ""
        if hop and hop.reply not in (None, Reply.TIME_EXCEEDED, Reply.ECHO_REPLY):
            address += (
                f" !{reply_text(hop.reply, language)}" if hop.address != result.target else ""
            )
        rtt = f"{hop.rtt * 1000:.1f} ms" if hop and hop.rtt is not None else ""
        row = f"{index + 1:>3}  {address:<23} {rtt:<10}"
        if good is not None:
            row += f" {(good.path[index] or '*') if index < len(good.path) else ''}"
        lines.append(row.rstrip())
    summary = where(result, language)
    if good is None:
        summary += f"; {words['no_good']}"
    else:
        change = compare(good, result)
        summary += f"; {change.text(language) if change else words['same']}"
    lines.append(summary[0].upper() + summary[1:] + ".")
    return "\n".join(lines)


def run_trace(
    config: Config,
    link_id: str,
    mode: str | None,
    port: int | None,
    max_hops: int,
    as_json: bool,
    language: str | None,
) -> int:
    """`linkmon trace` without the command line: 0 reached, 1 not reached, 2 usage error."""
    lang = language or config.agent.language
    if lang not in _WORDS:
        return _usage(f"--lang must be one of {', '.join(_WORDS)}, not {lang!r}")
    try:
        link = config.link(link_id)
    except KeyError:
        known = ", ".join(k.id for k in config.links)
        return _usage(f"unknown link {link_id!r}; links: {known}")
    chosen = next((m for m in MODES if m == mode), None)
    if mode is not None and chosen is None:
        return _usage(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    try:
        spec = trace_spec(link, chosen, port, max_hops=max_hops)
    except ValueError as exc:
        return _usage(str(exc))
    if spec is None:
        return _usage(f"link {link.id} has no probe with an IPv4 address to trace towards")
    try:
        result = asyncio.run(trace(spec))
    except ProbeSetupError as exc:
        return _usage(str(exc))
    good = None
    database = config.storage.path
    if str(database) != ":memory:" and Path(database).exists():
        with contextlib.suppress(sqlite3.Error):
            book = PathBook(database, readonly=True)
            try:
                good = book.good(link.id)
            finally:
                book.close()
    if as_json:
        change = compare(good, result) if good else None
        doc = {
            "link": link.id,
            "trace": result.to_dict(),
            "where": where(result, lang),
            "good": good.to_dict() if good else None,
            "change": change.to_dict() if change else None,
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(render(config, link, result, good, lang))
    return 0 if result.reached else 1


def _usage(message: str) -> int:
    typer.echo(f"linkmon trace: {message}", err=True)
    return 2


def trace_command(
    link: Annotated[str, typer.Argument(help="Link id from the config.")],
    config: ConfigOption,
    mode: Annotated[
        str | None,
        typer.Option(help="icmp, udp or tcp; default: the protocol of the link's first probe."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Destination port (udp, tcp).")] = None,
    max_hops: Annotated[int, typer.Option(help="Give up after this many hops.")] = 16,
    as_json: JsonOption = False,
    lang: LanguageOption = None,
) -> None:
    """Trace a link's path now and show it beside the last good path linkmon knows.

    Exit code: 0 the target answered, 1 the path is broken, 2 usage or set-up error.
    """
    raise typer.Exit(run_trace(config_or_exit(config), link, mode, port, max_hops, as_json, lang))
