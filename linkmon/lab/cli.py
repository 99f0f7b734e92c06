"""`linkmon lab ...`: build the lab, break its links, look at it, take it down."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from linkmon.durations import format_duration, parse_duration
from linkmon.lab.lab import DEFAULT_PREFIX, SHIPPED_LAB, Lab
from linkmon.lab.topology import DIRECTIONS, LabError

app = typer.Typer(
    help="A simulated Dukcapil WAN in network namespaces, with faults on demand (needs root).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PrefixOption = Annotated[
    str,
    typer.Option(
        "--prefix",
        "-p",
        envvar="LINKMON_LAB_PREFIX",
        help="Names everything the lab makes (namespaces PREFIX-<site>); one lab per prefix.",
    ),
]
ACTIONS = ("cut", "blackhole", "loss", "delay", "flap", "refuse", "restore")


@contextlib.contextmanager
def _lab_errors() -> Iterator[None]:
    """Show a LabError as one clear message and exit 1, not as a traceback."""
    try:
        yield
    except (LabError, ValueError) as exc:
        typer.echo(f"lab: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def up(
    file: Annotated[Path, typer.Option("--file", "-f", help="Lab file (YAML).")] = SHIPPED_LAB,
    prefix: PrefixOption = DEFAULT_PREFIX,
) -> None:
    """Build the lab: namespaces, links, routes, services and bridges. Returns when ready."""
    with _lab_errors():
        lab = Lab.up(file, prefix)
    topo = lab.topology
    hub = max(topo.sites, key=lambda s: len(topo.links_of(s.id)))
    far = next((k.peer(hub.id).site for k in topo.links_of(hub.id)), hub.id)
    opt = "" if prefix == DEFAULT_PREFIX else f" -p {prefix}"
    typer.echo(
        f"lab {prefix!r} is up: {len(topo.sites)} sites, {len(topo.links)} links ({file})\n"
        f"  look:      linkmon lab status{opt}\n"
        f"  run:       linkmon lab exec{opt} {hub.id} -- ping -c 3 {topo.site(far).address}\n"
        f"  break:     linkmon lab fault{opt} {topo.links[0].id} cut   (then: restore)\n"
        f"  take down: linkmon lab down{opt}"
    )


@app.command()
def down(prefix: PrefixOption = DEFAULT_PREFIX) -> None:
    """Remove every namespace, process and file of the lab; safe to repeat, also after a crash."""
    with _lab_errors():
        removed = Lab.teardown(prefix)
    namespaces = sum(1 for thing in removed if thing.startswith("namespace"))
    processes = len(removed) - namespaces
    typer.echo(
        f"lab {prefix!r} is down"
        + (
            f" (removed {namespaces} namespaces, stopped {processes} processes)"
            if removed
            else " (nothing was left)"
        )
    )


@app.command()
def fault(
    target: Annotated[str, typer.Argument(help="Link id (or site id for refuse/restore).")],
    action: Annotated[str, typer.Argument(help=" | ".join(ACTIONS))],
    value: Annotated[
        str | None,
        typer.Argument(help="loss: percent (10 or 10%); delay: one-way (40ms); flap: period (2s)."),
    ] = None,
    jitter: Annotated[str, typer.Option(help="delay: ± this much, uniform (5ms).")] = "0ms",
    direction: Annotated[
        str, typer.Option(help="delay/loss: both, forward (from -> to) or reverse.")
    ] = "both",
    prefix: PrefixOption = DEFAULT_PREFIX,
) -> None:
    """Break a link (cut, blackhole, loss, delay, flap) or a site's services (refuse); restore."""
    with _lab_errors():
        if action not in ACTIONS:
            raise LabError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
        if direction not in DIRECTIONS:
            raise LabError(f"--direction must be one of {', '.join(DIRECTIONS)}")
        needs_value = action in ("loss", "delay", "flap")
        if needs_value and value is None:
            raise LabError(
                f"{action} needs a value, e.g. `fault {target} {action} "
                f"{ {'loss': '10', 'delay': '40ms', 'flap': '2s'}[action] }`"
            )
        if not needs_value and value is not None:
            raise LabError(f"{action} takes no value, got {value!r}")
        lab = Lab.load(prefix)
        if action == "loss":
            lab.loss(target, _percent(str(value)), direction)
        elif action == "delay":
            lab.delay(target, parse_duration(str(value)), parse_duration(jitter), direction)
        elif action == "flap":
            lab.flap(target, parse_duration(str(value)))
        else:
            getattr(lab, action)(target)
    typer.echo(f"{target}: {action}" + (f" {value}" if value else ""))


def _percent(text: str) -> float:
    try:
        percent = float(text.removesuffix("%"))
    except ValueError:
        raise LabError(f"loss must be a percentage like 10 or 10%, got {text!r}") from None
    return percent / 100


@app.command()
def reroute(
    prefix: PrefixOption = DEFAULT_PREFIX,
    off: Annotated[bool, typer.Option("--off", help="Back to static routes.")] = False,
) -> None:
    """Route around down links from now on (as a routing protocol would), or stop (--off)."""
    with _lab_errors():
        routes = Lab.load(prefix).reroute(not off)
    typer.echo(
        "routes are static again: a cut link is not routed around"
        if off
        else "rerouting: every cut, flap and restore recomputes the routes"
    )
    for site, lines in routes.items():
        typer.echo(f"  {site}: {len(lines)} routes")


@app.command()
def status(
    prefix: PrefixOption = DEFAULT_PREFIX,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Show sites, links, faults in force, bridge counters and the lab's processes."""
    with _lab_errors():
        report = Lab.load(prefix).status()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"lab {report['prefix']!r} ({report['status']}) from {report['lab_file']}")
    typer.echo("sites:")
    width = max(len(site["id"]) for site in report["sites"])
    ns_width = max(len(site["netns"]) for site in report["sites"])
    for site in report["sites"]:
        services = ",".join(map(str, site["services"]))
        typer.echo(
            f"  {site['id']:<{width}}  {site['address']:<14} {site['netns']:<{ns_width}}"
            + (f"  services {services}" if services else "")
            + (f"  FAULT: {describe_faults(site['faults'])}" if site["faults"] else "")
        )
    typer.echo("links:")
    width = max(len(link["id"]) for link in report["links"])
    for link in report["links"]:
        a, b = (f"{e['site']} {e['address'].split('/')[0]}" for e in link["ends"])
        line = f"  {link['id']:<{width}}  {link['network']:<8} {a} -> {b}  [{link['kind']}]"
        if "bridge" in link:
            fwd, rev = link["bridge"]["forward"], link["bridge"]["reverse"]
            line += f" frames {fwd['frames']}/{rev['frames']}"
            line += f", lost {fwd['dropped']}/{rev['dropped']}"
        typer.echo(line + (f"  FAULT: {describe_faults(link['faults'])}" if link["faults"] else ""))
    dead = [p for p in report["processes"] if not p["alive"]]
    typer.echo(
        f"{len(report['processes']) - len(dead)} lab processes running"
        + "".join(f"\n  DEAD: {p['role']} {p['name']} (log {p['log']})" for p in dead)
    )


def describe_faults(faults: dict[str, Any]) -> str:
    """``loss 10% both, delay 40ms±5ms forward`` from a fault record of the state file."""
    words = []
    for kind, value in faults.items():
        if kind == "loss":
            words.append(f"loss {value['ratio'] * 100:g}% {value['direction']}")
        elif kind == "delay":
            words += [
                f"delay {format_duration(v['delay'])}±{format_duration(v['jitter'])} {side}"
                for side, v in value.items()
            ]
        elif kind == "flap":
            words.append(f"flap every {format_duration(value['period'])}")
        else:
            words.append(kind)
    return ", ".join(words)


@app.command()
def demo(
    prefix: PrefixOption = DEFAULT_PREFIX,
    port: Annotated[int, typer.Option(help="Host port where linkmon's pages appear.")] = 9840,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="linkmon config for the lab [default: config/lab-nunukan.yml]."
        ),
    ] = None,
    once: Annotated[bool, typer.Option(help="Stop after the scenario instead of waiting.")] = False,
) -> None:
    """Build the lab, run linkmon in it and play an outage scenario; Ctrl-C ends it all."""
    from linkmon.lab.demo import LAB_CONFIG, run_demo

    with _lab_errors():
        run_demo(prefix, port, config or LAB_CONFIG, once)


@app.command("exec", context_settings={"ignore_unknown_options": True})
def exec_(
    site: Annotated[str, typer.Argument(help="Site id, e.g. kab-nunukan.")],
    command: Annotated[list[str], typer.Argument(help="Command to run there (after --).")],
    prefix: PrefixOption = DEFAULT_PREFIX,
) -> None:
    """Run a command inside a site's namespace: `linkmon lab exec kab-nunukan -- ping ...`."""
    with _lab_errors():
        namespace = Lab.load(prefix).netns(site)
    os.execvp("ip", ["ip", "netns", "exec", namespace, *command])


if __name__ == "__main__":
    app()
