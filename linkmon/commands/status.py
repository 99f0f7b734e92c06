"""`linkmon status`: what is down, since when, why, and which offices can still serve online.

A client of the daemon's ``GET /api/v1/status``: it never reads the config or the database, so
it answers the same question from any machine that can reach the agent. Durations count up to
the document's ``generated_at`` (the daemon's clock), which keeps them right on a machine with
a wrong clock and makes a given document always render the same text.

Exit codes follow the Nagios plugin convention, so Nagios/Zabbix can call it as a check:
0 all up, 1 degraded, 2 down, 3 unknown or the daemon could not be read.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.text import Text

from ..api.openapi import shape_problems
from ..api.summary import summarize
from ..fleet import Fleet, PrometheusUnavailable, fleet_from_options, read_fleet
from ..urls import redact
from .options import LanguageOption
from .status_formats import LANGUAGES, UNKNOWN, Status, exit_code, nagios_line, render

DEFAULT_URL = "http://127.0.0.1:9840"
STATUS_PATH = "/api/v1/status"


class UnknownSite(LookupError):
    """``--site`` names a site this agent does not know; the message lists the ones it does."""


class StatusUnavailable(Exception):
    """The daemon could not be read: names the URL (without credentials) and what went wrong."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot read linkmon status from {redact(url)}: {reason}")


# ---------------------------------------------------------------------------------------------
# Fetching


def status_url(url: str) -> str:
    """The status endpoint for a daemon's base URL (the full endpoint URL is accepted too)."""
    trimmed = url.rstrip("/")
    return trimmed if trimmed.endswith(STATUS_PATH) else trimmed + STATUS_PATH


def fetch_status(url: str, timeout: float = 5.0, ca_file: Path | None = None) -> Status:
    """GET the status document; any failure becomes :class:`StatusUnavailable`.

    Credentials in the URL (``https://noc:secret@host:9840``) are sent as HTTP basic auth.
    Proxy variables are ignored: the daemon is on the NOC's own network.
    """
    endpoint = status_url(url)
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise StatusUnavailable(endpoint, f"cannot load CA file {ca_file}: {exc}") from None
    try:
        with httpx.Client(timeout=timeout, verify=verify, trust_env=False) as client:
            response = client.get(endpoint, headers={"Accept": "application/json"})
    except httpx.TimeoutException:
        raise StatusUnavailable(endpoint, f"no answer within {timeout:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise StatusUnavailable(endpoint, f"{type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        hint = (
            " (give credentials in the URL: https://user:password@host:port)"
            if response.status_code == 401
            else ""
        )
        body = " ".join(response.text.split())[:200]
        raise StatusUnavailable(
            endpoint,
            f"HTTP {response.status_code} {response.reason_phrase}{hint}"
            + (f": {body}" if body else ""),
        )
    try:
        doc = response.json()
    except ValueError as exc:
        raise StatusUnavailable(endpoint, f"the answer is not JSON ({exc})") from None
    problems = shape_problems(doc)
    if problems:
        raise StatusUnavailable(
            endpoint, f"the answer is not a linkmon status document: {'; '.join(problems)}"
        )
    return doc  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# One site (--site)


def select_site(doc: Status, site_id: str) -> Status:
    """The document narrowed to one site, the sites below it and every link touching them.

    Outages, maintenance and the summary are narrowed the same way, so the exit code answers
    "is this office (or kabupaten) all right" — one Nagios service per office.
    """
    known = {site["id"] for site in doc["sites"]}
    if site_id not in known:
        raise UnknownSite(
            f"no site {site_id!r} in the status of agent {doc['agent']['name']} "
            f"(sites: {', '.join(sorted(known))})"
        )
    children: dict[str, list[str]] = {}
    for site in doc["sites"]:
        if site["parent"] is not None:
            children.setdefault(site["parent"], []).append(site["id"])
    chosen: set[str] = set()
    todo = [site_id]
    while todo:
        here = todo.pop()
        if here not in chosen:
            chosen.add(here)
            todo.extend(children.get(here, ()))
    sites = [site for site in doc["sites"] if site["id"] in chosen]
    links = [link for link in doc["links"] if {link["from"], link["to"]} & chosen]
    link_ids = {link["id"] for link in links}
    windows = [
        w for w in doc["maintenance"] if set(w["links"]) & link_ids or set(w["sites"]) & chosen
    ]
    return {
        **doc,
        "summary": summarize(sites, links, windows),
        "sites": sites,
        "links": links,
        "outages": [o for o in doc["outages"] if o["link"] in link_ids],
        "maintenance": windows,
    }


# ---------------------------------------------------------------------------------------------
# The command


def _console(stream: Any) -> Console:
    """Colour on a terminal; not a single escape code in a pipe or with NO_COLOR set."""
    plain = bool(os.environ.get("NO_COLOR")) or not stream.isatty()
    return Console(
        file=stream,
        color_system=None if plain else "auto",
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


@dataclass(frozen=True)
class _Request:
    url: str
    site: str | None
    timeout: float
    ca_file: Path | None
    fleet: Fleet | None = None


def _read(request: _Request) -> Status:
    if request.fleet is not None:
        doc = read_fleet(request.fleet)
    else:
        doc = fetch_status(request.url, request.timeout, request.ca_file)
    return select_site(doc, request.site) if request.site is not None else doc


def _language(lang: str | None, doc: Status | None) -> str:
    if lang is not None:
        return lang
    found = doc["agent"]["language"] if doc is not None else "id"
    return found if found in LANGUAGES else "id"


def _once(request: _Request, mode: str, lang: str | None) -> int:
    try:
        doc = _read(request)
        language = _language(lang, doc)
        if mode == "json":
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        elif mode == "nagios":
            sys.stdout.write(nagios_line(doc, language) + "\n")
        else:
            _console(sys.stdout).print(render(doc, language))
        return exit_code(doc)
    except (StatusUnavailable, PrometheusUnavailable, UnknownSite) as exc:
        return _fail(str(exc), mode)


def _fail(message: str, mode: str) -> int:
    """Nagios reads a plugin's first stdout line; people and scripts read stderr."""
    if mode == "nagios":
        sys.stdout.write(f"LINKMON UNKNOWN: {message.replace('|', '/')}\n")
    else:
        sys.stderr.write(f"linkmon status: {message}\n")
    return UNKNOWN


def _watch(request: _Request, lang: str | None, interval: float) -> int:
    """Redraw every ``interval`` seconds until Ctrl-C; an unreachable daemon is shown, not fatal.

    Returns the exit code of the last picture shown.
    """
    console = _console(sys.stdout)
    code = UNKNOWN
    try:
        while True:
            try:
                doc = _read(request)
                frame, code = render(doc, _language(lang, doc)), exit_code(doc)
            except (StatusUnavailable, PrometheusUnavailable, UnknownSite) as exc:
                frame = Text(f"{time.strftime('%H:%M:%S')} {exc}", style="bold red")
                code = UNKNOWN
            if console.is_terminal:
                console.clear()
            console.print(frame)
            if not console.is_terminal:
                console.print()
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return code


def run_status(
    url: str = DEFAULT_URL,
    as_json: bool = False,
    site: str | None = None,
    watch: bool = False,
    nagios: bool = False,
    interval: float = 2.0,
    lang: str | None = None,
    timeout: float = 5.0,
    ca_file: Path | None = None,
    fleet: Fleet | None = None,
) -> int:
    """`linkmon status` without the command line around it; returns the exit code.

    With ``fleet``, the document is the whole fleet's, read from Prometheus, and ``url`` is
    not used."""
    if lang is not None and lang not in LANGUAGES:
        return _fail(
            f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}",
            "nagios" if nagios else "text",
        )
    if sum((as_json, nagios, watch)) > 1:
        return _fail("--json, --nagios and --watch exclude each other", "text")
    if interval < 0.2 or timeout <= 0:
        return _fail("--interval must be at least 0.2 s and --timeout above 0", "text")
    request = _Request(url, site, timeout, ca_file, fleet)
    if watch:
        return _watch(request, lang, interval)
    return _once(request, "json" if as_json else "nagios" if nagios else "text", lang)


def status_command(
    url: Annotated[str, typer.Option(help="Base URL of the linkmon daemon.")] = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status JSON.")] = False,
    site: Annotated[
        str | None, typer.Option(help="Only this site, the offices below it and their links.")
    ] = None,
    watch: Annotated[bool, typer.Option(help="Redraw every --interval until Ctrl-C.")] = False,
    nagios: Annotated[bool, typer.Option(help="One Nagios plugin line with perfdata.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between redraws.")] = 2.0,
    lang: LanguageOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the daemon.")] = 5.0,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificate to trust for an https URL.")
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(help="The whole fleet, from the Prometheus at this URL (not --url)."),
    ] = None,
    agent: Annotated[
        list[str] | None, typer.Option(help="With --prometheus: only this agent (repeatable).")
    ] = None,
    kabupaten: Annotated[
        str | None, typer.Option(help="With --prometheus: only this kabupaten/kota.")
    ] = None,
    stale_after: Annotated[
        float,
        typer.Option(help="With --prometheus: seconds without news before an agent is silent."),
    ] = 90.0,
) -> None:
    """What is down, since when, why, and which offices can serve online now.

    Exit code: 0 all up, 1 degraded, 2 down, 3 unknown or daemon unreachable.
    """
    try:
        fleet = fleet_from_options(
            prometheus, agent or [], kabupaten, stale_after, lang, timeout, ca_file
        )
    except ValueError as exc:
        raise typer.Exit(_fail(str(exc), "nagios" if nagios else "text")) from None
    raise typer.Exit(
        run_status(url, as_json, site, watch, nagios, interval, lang, timeout, ca_file, fleet)
    )


def main() -> None:
    typer.run(status_command)


if __name__ == "__main__":
    main()
