"""A running lab: build it, break its links, measure them, take it down.

Everything the lab makes is named after a prefix (default ``lm``): namespaces ``lm-<site>``,
the state directory ``/run/linkmon-lab/lm``, nftables tables ``lm_lab`` inside them. Every
process it starts lives inside one of its namespaces. That is what makes ``down`` safe after a
crash: it needs no state file, only ``ip netns list`` and ``ip netns pids``.

The state file (``state.json``) records the lab file, the processes and the faults in force, so
the CLI, tests and the demo — separate processes — act on the same lab. Changes to it are
made under a lock and written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import linkmon
from linkmon.lab import faults, netns
from linkmon.lab.topology import LabError, Link, Site, Topology, load_topology, parse_topology

STATE_ROOT = Path("/run/linkmon-lab")
SHIPPED_LAB = Path(__file__).with_name("nunukan.yml")
"""Kabupaten Nunukan: DC, DRC, the kabupaten hub and five kecamatan behind it."""
DEFAULT_PREFIX = "lm"
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_READY_TIMEOUT = 20.0
_SYSCTLS = {
    # IPv4 only: no router solicitations, DAD or MLD chatter on the lab links.
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    # Every hop answers every traceroute probe (the default allows ~1 ICMP error per second).
    "net.ipv4.icmp_ratelimit": "0",
}


@dataclass(frozen=True)
class Process:
    """A process the lab started; ``argv`` is its command line after `ip netns exec`."""

    role: str
    name: str
    pid: int
    netns: str
    argv: list[str]
    log: str


@dataclass(frozen=True)
class PingResult:
    """What iputils ping saw: the lab's independent check of its own impairments."""

    sent: int
    received: int
    rtts: tuple[float, ...]
    errors: tuple[str, ...]
    """ICMP errors reported, e.g. ``From 198.19.0.5 icmp_seq=1 Time to live exceeded``."""

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0

    @property
    def median(self) -> float:
        if not self.rtts:
            raise LabError("no echo reply: no RTT to take the median of")
        return statistics.median(self.rtts)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab builds and removes network namespaces: run it as root")


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise LabError(f"lab prefix {prefix!r} must be 1-8 lowercase letters/digits, letter first")
    return prefix


class Lab:
    """A lab that is up. Get one with :meth:`up` or, from another process, :meth:`load`."""

    def __init__(self, prefix: str, topology: Topology, state_dir: Path) -> None:
        self.prefix = prefix
        self.topology = topology
        self.state_dir = state_dir
        self.table = f"{prefix}_lab"

    # ---- life cycle ---------------------------------------------------------------------

    @classmethod
    def up(
        cls, lab_file: str | Path, prefix: str = DEFAULT_PREFIX, state_root: Path = STATE_ROOT
    ) -> Lab:
        """Build the lab; on any failure everything built so far is removed again."""
        topology = load_topology(lab_file)
        _need_root()
        state_dir = Path(state_root) / check_prefix(prefix)
        if (state_dir / "state.json").exists() or netns.namespaces(prefix):
            raise LabError(
                f"a lab with prefix {prefix!r} is already up (or left over from a crash); "
                f"run `linkmon lab down --prefix {prefix}` first"
            )
        state_dir.mkdir(parents=True, exist_ok=True)
        lab = cls(prefix, topology, state_dir)
        lab._write_state(
            {
                "prefix": prefix,
                "lab_file": str(lab_file),
                "topology": topology.text,
                "status": "building",
                "processes": [],
                "faults": {},
            }
        )
        try:
            lab._build()
        except BaseException:
            cls.teardown(prefix, state_root)
            raise
        return lab

    @classmethod
    def load(cls, prefix: str = DEFAULT_PREFIX, state_root: Path = STATE_ROOT) -> Lab:
        state_dir = Path(state_root) / check_prefix(prefix)
        try:
            state = json.loads((state_dir / "state.json").read_text())
        except FileNotFoundError:
            raise LabError(
                f"no lab with prefix {prefix!r} is up ({state_dir}/state.json is missing); "
                "start one with `linkmon lab up -f LAB.yml`"
            ) from None
        return cls(prefix, parse_topology(state["topology"], state["lab_file"]), state_dir)

    def down(self) -> list[str]:
        return self.teardown(self.prefix, self.state_dir.parent)

    @staticmethod
    def teardown(prefix: str = DEFAULT_PREFIX, state_root: Path = STATE_ROOT) -> list[str]:
        """Remove every process, namespace and file of this prefix; safe to repeat.

        Works from the kernel's view, not the state file, so it also cleans up after a
        ``kill -9``: processes are found by the namespace they live in, and, should a
        namespace name already be gone, by the exact command line the state file recorded.
        """
        state_dir = Path(state_root) / check_prefix(prefix)
        _need_root()
        names = netns.namespaces(prefix)
        pids = {pid for name in names for pid in netns.namespace_pids(name)}
        with contextlib.suppress(OSError, ValueError, KeyError):
            state = json.loads((state_dir / "state.json").read_text())
            pids |= {p["pid"] for p in state["processes"] if _cmdline(p["pid"]) == p["argv"]}
        stopped = netns.stop_processes(pids)
        for name in names:
            netns.delete_namespace(name)
        shutil.rmtree(state_dir, ignore_errors=True)
        return [f"namespace {n}" for n in names] + [f"process {p}" for p in sorted(stopped)]

    def _build(self) -> None:
        topo = self.topology
        for site in topo.sites:
            sysctls = dict(_SYSCTLS)
            if topo.is_transit(site.id):
                sysctls["net.ipv4.ip_forward"] = "1"
            netns.add_namespace(self.netns(site.id), sysctls)
        for link in topo.links:
            a, b = link.from_end, link.to_end
            if link.bridge:
                for end in link.ends:
                    netns.run(
                        [
                            "ip",
                            "-n",
                            self.netns(end.site),
                            "tuntap",
                            "add",
                            "dev",
                            end.device,
                            "mode",
                            "tap",
                        ]
                    )
            else:
                netns.run(
                    [
                        "ip",
                        "link",
                        "add",
                        a.device,
                        "netns",
                        self.netns(a.site),
                        "type",
                        "veth",
                        "peer",
                        "name",
                        b.device,
                        "netns",
                        self.netns(b.site),
                    ]
                )
        for site in topo.sites:
            commands = [f"address add {site.address}/32 dev lo"]
            for link in topo.links_of(site.id):
                end = link.end(site.id)
                commands += [
                    f"address add {end.interface} dev {end.device}",
                    f"link set {end.device} up",
                ]
            netns.ip_batch(self.netns(site.id), commands)
            self._apply_routes(site.id)
        certificates = self._certificates()
        started = [
            self._start_services(s, certificates.get(s.id)) for s in topo.sites if s.services
        ]
        started += [self._start_bridge(k) for k in topo.links if k.bridge]
        with self._state() as state:
            state["processes"] += [asdict(process) for process, _ in started]
        self._await_ready(started)
        with self._state() as state:
            state["status"] = "up"

    def _start_services(
        self, site: Site, certificate: Path | None
    ) -> tuple[Process, subprocess.Popen[bytes]]:
        assert site.services is not None
        args = ["--site", site.id]
        if site.services.http:
            args += ["--http", str(site.services.http)]
        if site.services.https:
            args += ["--https", str(site.services.https), "--tls", str(certificate)]
        for port in site.services.tcp:
            args += ["--tcp", str(port)]
        return self._spawn("services", site.id, site.id, "linkmon.lab.services", args)

    def _start_bridge(self, link: Link) -> tuple[Process, subprocess.Popen[bytes]]:
        a, b = link.from_end, link.to_end
        args = [
            "--from",
            f"{self.netns(a.site)}:{a.device}",
            "--to",
            f"{self.netns(b.site)}:{b.device}",
            "--control",
            self._control(link),
        ]
        return self._spawn("bridge", link.id, a.site, "linkmon.lab.bridge", args)

    def _certificates(self) -> dict[str, Path]:
        """Key and certificate per HTTPS site, signed by the lab's own CA (``ca.pem``)."""
        sites = [s for s in self.topology.sites if s.services and s.services.https]
        if not sites:
            return {}
        try:
            import trustme
        except ImportError:
            raise LabError("HTTPS services need the trustme package: pip install trustme") from None
        ca = trustme.CA(organization_name="linkmon lab")
        ca.cert_pem.write_to_path(str(self.ca_file))
        pems = {}
        for site in sites:
            pems[site.id] = self.state_dir / f"{site.id}.pem"
            cert = ca.issue_cert(str(site.address), f"{site.id}.lab.invalid")
            cert.private_key_and_cert_chain_pem.write_to_path(str(pems[site.id]))
        return pems

    @property
    def ca_file(self) -> Path:
        """The CA that signed the lab's HTTPS certificates (for probes that verify TLS)."""
        return self.state_dir / "ca.pem"

    def _spawn(
        self, role: str, name: str, site: str | None, module: str, args: list[str]
    ) -> tuple[Process, subprocess.Popen[bytes]]:
        """Start ``python -m module`` in a site's namespace, detached, logging to the state dir.

        ``site`` None starts it on the host: for a process that moves into a namespace
        itself. The caller records the process in the state (under the lock it holds).
        """
        argv = [sys.executable, "-m", module, *args]
        log = self.state_dir / f"{role}-{name}.log"
        env = dict(os.environ)
        package_root = str(Path(linkmon.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        where = ["ip", "netns", "exec", self.netns(site)] if site else []
        with open(log, "ab") as log_file:
            popen = subprocess.Popen(
                [*where, *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )
        netns_name = self.netns(site) if site else "host"
        return Process(role, name, popen.pid, netns_name, argv, str(log)), popen

    def _await_ready(self, started: Sequence[tuple[Process, subprocess.Popen[bytes]]]) -> None:
        """Wait until every started process prints ``ready`` (its sockets are open)."""
        deadline = time.monotonic() + _READY_TIMEOUT
        for process, popen in started:
            assert popen.stdout is not None
            line = b""
            if select.select([popen.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
                line = popen.stdout.readline()
            popen.stdout.close()
            if line.strip() != b"ready":
                tail = Path(process.log).read_text(errors="replace")[-2000:]
                raise LabError(f"{process.role} for {process.name} did not start:\n{tail}")

    def forward(self, site: str, port: int, host_port: int, host: str = "127.0.0.1") -> None:
        """Make ``127.0.0.1:port`` inside a site reachable on the host at ``host:host_port``.

        See :mod:`linkmon.lab.forward`; the demo uses it to show linkmon's pages.
        """
        args = [
            "--listen",
            f"{host}:{host_port}",
            "--netns",
            self.netns(site),
            "--to",
            f"127.0.0.1:{port}",
        ]
        with self._state() as state:
            process, popen = self._spawn(
                "forward", f"{site}-{port}", None, "linkmon.lab.forward", args
            )
            state["processes"].append(asdict(process))
        self._await_ready([(process, popen)])

    # ---- looking around -----------------------------------------------------------------

    def netns(self, site: str) -> str:
        """Namespace of a site (``lm-kab-nunukan``)."""
        return f"{self.prefix}-{self.topology.site(site).id}"

    def address(self, site: str) -> str:
        return str(self.topology.site(site).address)

    def exec(
        self, site: str, argv: Sequence[str], *, timeout: float = 60.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a site's namespace and capture its output."""
        return subprocess.run(
            ["ip", "netns", "exec", self.netns(site), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def executor(self, site: str) -> ThreadPoolExecutor:
        """A worker thread living in a site's namespace: runs Python there (a trace, a probe)
        without a new process; the sockets it opens belong to the site. Shut it down after."""
        name = self.netns(site)
        return ThreadPoolExecutor(
            1, thread_name_prefix=name, initializer=netns.enter, initargs=(name,)
        )

    def popen(self, site: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a long-running command (say, linkmon itself) inside a site's namespace.

        ``lab down`` stops it with everything else, but a caller should stop it first.
        """
        return subprocess.Popen(["ip", "netns", "exec", self.netns(site), *argv], **kwargs)

    def ping(
        self,
        site: str,
        target: str,
        count: int = 10,
        interval: float = 0.01,
        ttl: int | None = None,
        wait: float = 1.0,
    ) -> PingResult:
        """iputils ping from a site: the independent yardstick for delay, loss and hops."""
        argv = ["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}"]
        if ttl is not None:
            argv += ["-t", str(ttl)]
        done = self.exec(site, [*argv, target], timeout=count * interval + wait + 30)
        summary = re.search(r"(\d+) packets transmitted, (\d+) received", done.stdout)
        if summary is None:  # nothing sent: "ping: connect: Network is unreachable" (a cut)
            return PingResult(0, 0, (), (done.stderr.strip() or done.stdout.strip(),))
        rtts = tuple(float(ms) / 1000 for ms in re.findall(r" time=([\d.]+) ms", done.stdout))
        errors = tuple(line for line in done.stdout.splitlines() if line.startswith("From "))
        return PingResult(int(summary[1]), int(summary[2]), rtts, errors)

    def bridge_overhead(self, link_id: str, count: int = 200) -> float:
        """Median RTT across a bridged link with no delay set: the bridge's own cost.

        Measured one hop (``from`` site to the ``to`` end's address) with iputils ping; a
        delay of d each way should then show as 2d plus this figure.
        """
        link = self._bridged(link_id)
        if link.id in self._read_state()["faults"]:
            raise LabError(f"link {link.id} has faults in force; restore it before measuring")
        return self.ping(link.from_end.site, str(link.to_end.interface.ip), count=count).median

    def bridge_stats(self, link_id: str) -> dict[str, Any]:
        """Frames, drops and lateness per direction, as the link's bridge counts them."""
        return faults.bridge_request(self._control(self._bridged(link_id)), {})

    def status(self) -> dict[str, Any]:
        state = self._read_state()
        processes = [dict(p, alive=_cmdline(p["pid"]) == p["argv"]) for p in state["processes"]]
        links = []
        for link in self.topology.links:
            entry: dict[str, Any] = {
                "id": link.id,
                "network": link.network,
                "kind": "bridge" if link.bridge else "veth",
                "ends": [
                    {"site": e.site, "device": e.device, "address": str(e.interface)}
                    for e in link.ends
                ],
                "faults": state["faults"].get(link.id, {}),
            }
            if link.bridge:
                with contextlib.suppress(LabError):
                    entry["bridge"] = self.bridge_stats(link.id)
            links.append(entry)
        sites = [
            {
                "id": s.id,
                "netns": self.netns(s.id),
                "address": str(s.address),
                "services": list(s.services.ports) if s.services else [],
                "faults": state["faults"].get(s.id, {}),
            }
            for s in self.topology.sites
        ]
        return {
            "prefix": self.prefix,
            "status": state["status"],
            "lab_file": state["lab_file"],
            "sites": sites,
            "links": links,
            "processes": processes,
        }

    # ---- faults -------------------------------------------------------------------------

    def cut(self, link_id: str) -> None:
        """Set the link's devices down at both ends (a pulled cable)."""
        with self._state() as state:
            self.set_link_state(link_id, up=False)
            self._record(state, link_id, "cut", True)

    def blackhole(self, link_id: str) -> None:
        """Silently drop every packet both ways; the devices stay up."""
        self._ingress_fault(link_id, {"blackhole": True})

    def loss(self, link_id: str, ratio: float, direction: str = "both") -> None:
        """Lose ``ratio`` (0-1) of round trips (see :mod:`linkmon.lab.faults`); 0 removes it."""
        faults.one_way_loss(ratio, direction)
        self._ingress_fault(
            link_id, {"loss": {"ratio": ratio, "direction": direction}} if ratio else {"loss": None}
        )

    def delay(
        self, link_id: str, delay: float, jitter: float = 0.0, direction: str = "both"
    ) -> None:
        """Hold frames ``delay ± jitter`` seconds one way; ``both`` makes the RTT twice that."""
        link = self._bridged(link_id)
        faults.check_direction(direction)
        if delay < 0 or jitter < 0 or jitter > delay:
            raise LabError(f"want 0 <= jitter <= delay, got delay {delay}s jitter {jitter}s")
        sides = ("forward", "reverse") if direction == "both" else (direction,)
        with self._state() as state:
            reply = faults.bridge_request(
                self._control(link), {s: {"delay": delay, "jitter": jitter} for s in sides}
            )
            settings = {
                s: {"delay": reply[s]["delay"], "jitter": reply[s]["jitter"]}
                for s in ("forward", "reverse")
                if reply[s]["delay"] or reply[s]["jitter"]
            }
            self._record(state, link.id, "delay", settings or None)

    def flap(self, link_id: str, period: float) -> None:
        """Cut and restore the link every ``period`` seconds until :meth:`restore`."""
        link = self.topology.link(link_id)
        if period <= 0:
            raise LabError(f"flap period must be positive, got {period}s")
        with self._state() as state:
            self._stop_flapping(state, link.id)
            process, popen = self._spawn(
                "flap",
                link.id,
                link.from_end.site,
                "linkmon.lab.flap",
                [
                    "--prefix",
                    self.prefix,
                    "--state-root",
                    str(self.state_dir.parent),
                    "--link",
                    link.id,
                    "--period",
                    f"{period:g}",
                ],
            )
            state["processes"].append(asdict(process))
            self._record(state, link.id, "flap", {"period": period, "pid": process.pid})
        self._await_ready([(process, popen)])

    def refuse(self, site_id: str) -> None:
        """Reject the site's TCP/HTTP services with a TCP reset; ICMP still answers."""
        site = self.topology.site(site_id)
        if not site.services:
            raise LabError(f"site {site.id} runs no services to refuse")
        with self._state() as state:
            script = faults.refuse_script(self.table, site.services.ports, True)
            netns.nft(self.netns(site.id), script)
            self._record(state, site.id, "refuse", True)

    def restore(self, name: str) -> None:
        """Undo every fault on a link (or, given a site id, the refused services).

        Undoes everything whether or not the state records it, so it also repairs by hand.
        """
        with self._state() as state:
            if name in {s.id for s in self.topology.sites}:
                site = self.topology.site(name)
                state["faults"].pop(site.id, None)
                if site.services:
                    netns.nft(
                        self.netns(site.id),
                        faults.refuse_script(self.table, site.services.ports, False),
                    )
                return
            link = self.topology.link(name)
            self._stop_flapping(state, link.id)
            state["faults"].pop(link.id, None)
            self._apply_ingress(link, {})
            if link.bridge:
                faults.bridge_request(
                    self._control(link),
                    {s: {"delay": 0, "jitter": 0} for s in ("forward", "reverse")},
                )
            self.set_link_state(link.id, up=True)

    def restore_all(self) -> None:
        for name in list(self._read_state()["faults"]):
            self.restore(name)

    def set_link_state(self, link_id: str, up: bool) -> None:
        """Set both ends up or down; then route around it (after :meth:`reroute`) or, on up,
        put back the static routes the kernel dropped on down."""
        link = self.topology.link(link_id)
        for end in link.ends:
            netns.run(
                [
                    "ip",
                    "-n",
                    self.netns(end.site),
                    "link",
                    "set",
                    end.device,
                    "up" if up else "down",
                ]
            )
        if self._rerouting():
            self._route_all(dynamic=True)
        elif up:
            for end in link.ends:
                self._apply_routes(end.site, end.device)

    def _rerouting(self) -> bool:
        """Whether routes follow the links (:meth:`reroute`). Without a state file (lost, or
        the lab being taken down) routes are static: a flapper reads this at every change and
        must go on until it is stopped, as every lab process does, so that ``lab down`` finds
        it whatever became of the file."""
        try:
            return bool(self._read_state().get("rerouting"))
        except LabError:
            return False

    def reroute(self, enabled: bool = True) -> dict[str, list[str]]:
        """Route around down links from now on, as a routing protocol would.

        Every site's routes are recomputed over the links that are up (least cost first), now
        and after every later cut, flap or restore; a site cut off from another gets no route
        to it. ``enabled=False`` goes back to static routes (a cut link is not routed around).
        Returns each site's routes as installed, ``"DEST via GATEWAY dev DEVICE"``.
        """
        with self._state() as state:
            state["rerouting"] = enabled
            return self._route_all(dynamic=enabled)

    def down_links(self) -> set[str]:
        """Links with a device down at either end (cut, or a flap's down phase)."""
        up: set[tuple[str, str]] = set()
        for site in self.topology.sites:
            devices = json.loads(
                netns.run(["ip", "-n", self.netns(site.id), "-j", "link", "show"]) or "[]"
            )
            up |= {(site.id, d["ifname"]) for d in devices if "UP" in d.get("flags", ())}
        return {
            k.id for k in self.topology.links if any((e.site, e.device) not in up for e in k.ends)
        }

    # ---- internals ----------------------------------------------------------------------

    def _route_all(self, dynamic: bool) -> dict[str, list[str]]:
        """Make every site's routes those of :meth:`Topology.routes`: around the down links
        (``dynamic``), or the static ones whose device is up. Stale routes are deleted."""
        down = self.down_links()
        installed: dict[str, list[str]] = {}
        for site in self.topology.sites:
            name = self.netns(site.id)
            if dynamic:
                routes = self.topology.routes(site.id, down)
            else:
                devices = {
                    k.end(site.id).device
                    for k in self.topology.links_of(site.id)
                    if k.id not in down
                }
                routes = [r for r in self.topology.routes(site.id) if r.device in devices]
            wanted = {str(r.destination) for r in routes}
            current = json.loads(
                netns.run(["ip", "-n", name, "-j", "route", "show", "proto", "boot"]) or "[]"
            )
            stale = [c["dst"] for c in current if str(ipaddress.ip_network(c["dst"])) not in wanted]
            installed[site.id] = [f"{r.destination} via {r.via} dev {r.device}" for r in routes]
            netns.ip_batch(
                name,
                [
                    *(f"route del {dst}" for dst in stale),
                    *(f"route replace {line}" for line in installed[site.id]),
                ],
            )
        return installed

    def _apply_routes(self, site_id: str, device: str | None = None) -> None:
        """Install a site's routes, or only those via ``device`` (the ones its down dropped:
        routes via another device that is down cannot be added, and were never removed)."""
        netns.ip_batch(
            self.netns(site_id),
            (
                f"route replace {r.destination} via {r.via} dev {r.device}"
                for r in self.topology.routes(site_id)
                if device in (None, r.device)
            ),
        )

    def _ingress_fault(self, link_id: str, change: dict[str, Any]) -> None:
        link = self.topology.link(link_id)
        with self._state() as state:
            current = dict(state["faults"].get(link.id, {}))
            current.update(change)
            self._apply_ingress(link, current)
            for key, value in change.items():
                self._record(state, link.id, key, value)

    def _apply_ingress(self, link: Link, fault: dict[str, Any]) -> None:
        """Rewrite both ends' ingress chains from the link's blackhole and loss faults."""
        loss = fault.get("loss")
        one_way = faults.one_way_loss(loss["ratio"], loss["direction"]) if loss else {}
        # Frames going "forward" (from -> to) arrive at the ``to`` end, and the reverse.
        for end, direction in ((link.to_end, "forward"), (link.from_end, "reverse")):
            script = faults.ingress_script(
                self.table,
                f"link{link.index}",
                end.device,
                bool(fault.get("blackhole")),
                one_way.get(direction, 0),
            )
            netns.nft(self.netns(end.site), script)

    def _stop_flapping(self, state: dict[str, Any], link_id: str) -> None:
        flapping = state["faults"].get(link_id, {}).get("flap")
        if flapping:
            netns.stop_processes([flapping["pid"]])
            state["processes"] = [p for p in state["processes"] if p["pid"] != flapping["pid"]]
            self._record(state, link_id, "flap", None)
            self.set_link_state(link_id, up=True)

    @staticmethod
    def _record(state: dict[str, Any], name: str, key: str, value: Any) -> None:
        entry = state["faults"].setdefault(name, {})
        if value is None or value is False:
            entry.pop(key, None)
        else:
            entry[key] = value
        if not entry:
            del state["faults"][name]

    def _bridged(self, link_id: str) -> Link:
        link = self.topology.link(link_id)
        if not link.bridge:
            raise LabError(
                f"link {link.id} is a plain veth; give it `bridge: true` in the lab "
                "file to delay it"
            )
        return link

    def _control(self, link: Link) -> str:
        return str(self.state_dir / f"bridge-{link.index}.sock")

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text())
        except FileNotFoundError:
            raise LabError(f"lab {self.prefix!r} is down (no state in {self.state_dir})") from None
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_dir / "state.json")

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write the state file under an exclusive lock."""
        with open(self.state_dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read_state()
            yield state
            self._write_state(state)


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []
