"""The long-running process: wires config → scheduler → probes → state → metrics and alerts.

Data flows one way: the scheduler hands each probe result to :class:`Daemon.result`, which
feeds the state model; transitions go to metrics, storage and the alert outbox. Reload swaps
the config and the scheduler's jobs without losing the state of links that did not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from probes import IcmpSpec, Prober, ProbeResult, http, tcp

from . import __version__, openfiles
from .config import Config, ConfigError, load_config_apart
from .logs import RepeatFilter, guard_against_floods
from .metrics import Metrics
from .monitor import Monitor
from .privileges import ServiceUser, StartRefused, check_access, drop_privileges, service_user
from .scheduler import Job, Scheduler
from .web import create_app
from .webconfig import WebConfigError, load_web_config, security_middleware, tls_context
from .webserver import ConnectionGuard, EmbeddedServer, web_settings

log = logging.getLogger("linkmon")

STOP_GRACE = 1.5
RESOLVER_THREADS = 32
# TCP and HTTP probes running at once, at most: each holds a file descriptor.
PROBES_IN_FLIGHT = tcp.DEFAULT_CONCURRENCY + http.DEFAULT_CONCURRENCY
LISTEN_BACKLOG = 4096  # connections the kernel queues unaccepted: they cost linkmon no fd
FULL_COLLECTION_EVERY = 1000  # middle-generation collections between two full ones


class Daemon:
    def __init__(self, config_path: Path, config: Config) -> None:
        self.config_path = config_path
        self.config = config
        self.metrics = Metrics(config.agent.name, detail=config.server.metrics_detail)
        self.prober = Prober()
        # Built in serve(), after privileges drop, so the state files belong to --user.
        self.monitor: Monitor
        self.scheduler = Scheduler(self.prober.begin, self)
        self.started_at = time.time()
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._first_results: set[tuple[str, int]] = set()

    # -- scheduler observer -------------------------------------------------------------

    def result(self, job: Job, result: ProbeResult, at: float) -> None:
        self._first_results.add(job.key)
        self.monitor.observe(job.link, job.index, result, at)

    def lag(self, seconds: float) -> None:
        self.metrics.round_lag.observe(seconds)

    def skipped(self, rounds: int) -> None:
        self.metrics.rounds_skipped.labels(self.metrics.agent).inc(rounds)

    def probe_error(self, job: Job) -> None:
        self.metrics.probe_errors.labels(self.metrics.agent, job.kind).inc()

    # -- what the web side asks -----------------------------------------------------------

    @property
    def ready(self) -> bool:
        return len(self._first_results) >= len(self.scheduler.jobs)

    @property
    def reload_enabled(self) -> bool:
        return self.config.server.enable_reload

    def render_metrics(self) -> list[bytes]:
        return self.metrics.render_parts()

    def status(self) -> dict[str, Any]:
        return self.monitor.status(version=__version__, started_at=self.started_at)

    async def reload(self) -> tuple[bool, str]:
        """Load the config file again; a bad file changes nothing but the reload metric."""
        async with self._reload_lock:
            try:
                new = await asyncio.to_thread(load_config_apart, self.config_path)
            except ConfigError as exc:
                self.metrics.config_loaded(False)
                log.error("reload refused, still running the previous config: %s", exc)
                return False, f"reload refused: {exc}"
            if new.server != self.config.server or new.storage != self.config.storage:
                log.warning("reload: server and storage settings take effect on restart only")
            self.config = new
            self.monitor.reconfigure(new)
            self.scheduler.set_jobs(jobs_for(new))
            self.metrics.config_loaded(True)
            _settle_heap()
            log.info(
                "config reloaded: %d links, %d probes", len(new.links), len(self.scheduler.jobs)
            )
            return True, "config reloaded"

    def stop(self) -> None:
        self._stopping.set()

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self, listener: socket.socket, user: ServiceUser | None) -> int:
        loop = asyncio.get_running_loop()
        # Name lookups run in the default pool; a resolver that never answers holds a worker
        # for timeout x attempts, so give lookups of other names room to go on.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="resolve")
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))

        await self.prober.start(icmp_specs(self.config))
        if user is not None:
            drop_privileges(user)
        self.monitor = Monitor(self.config, self.metrics)
        guard = ConnectionGuard(self._web_share(), self.metrics)
        web_config_path = self.config.server.web_config
        app = guard.track(create_app(self, security_middleware(web_config_path)))
        server = EmbeddedServer(web_settings(app, tls_context(web_config_path)), guard)
        web = loop.create_task(server.serve(sockets=[listener]), name="web")
        sweeper = loop.create_task(guard.run(), name="web-timeouts")
        await self.monitor.start()
        self.scheduler.set_jobs(jobs_for(self.config))
        self.metrics.config_loaded(True)
        _settle_heap()
        log.info(
            "linkmon %s started as agent %s: %d links, %d probes, listening on %s",
            __version__,
            self.config.agent.name,
            len(self.config.links),
            len(self.scheduler.jobs),
            self.config.server.listen,
        )

        stop = loop.create_task(self._stopping.wait())
        done, _ = await asyncio.wait({web, stop}, return_when=asyncio.FIRST_COMPLETED)
        if web in done and web.exception() is not None:
            log.error("web server failed: %s", web.exception())
        log.info("stopping")
        server.should_exit = True
        await self.scheduler.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.monitor.stop(), STOP_GRACE)
        await self.prober.close()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(web, 0.5)
        stop.cancel()
        sweeper.cancel()
        return 0

    def _web_share(self) -> int:
        """Connections the web side may hold: what the open-file limit leaves once probing
        has its reserve (counted before the web side opens anything)."""
        budget = openfiles.FileBudget(
            limit=openfiles.current_limit(),
            open_at_start=openfiles.in_use(),
            probe_reserve=openfiles.probe_reserve(
                self.config, probes_in_flight=PROBES_IN_FLIGHT, lookups_at_once=RESOLVER_THREADS
            ),
        )
        if budget.too_small:
            log.warning(
                "open files: the limit %d leaves the web side less than its minimum once "
                "probing has its reserve (%d, %d open now): raise it (systemd LimitNOFILE=)",
                budget.limit,
                budget.probe_reserve,
                budget.open_at_start,
            )
        log.info(
            "web side: at most %d connections (open-file limit %d, %d reserved for probing)",
            budget.web_connections,
            budget.limit,
            budget.probe_reserve,
        )
        return budget.web_connections


def jobs_for(config: Config) -> list[Job]:
    return [
        Job(
            link=link.id,
            index=i,
            kind=probe.kind,
            target=probe.target_label,
            spec=probe.spec(),
            interval=probe.interval,
            timeout=probe.timeout,
        )
        for link in config.links
        for i, probe in enumerate(link.probes)
    ]


def icmp_specs(config: Config) -> list[IcmpSpec]:
    """ICMP sockets (per family, source and interface) to open before privileges drop."""
    return [
        spec
        for link in config.links
        for probe in link.probes
        if isinstance(spec := probe.spec(), IcmpSpec)
    ]


def open_listener(listen: str) -> socket.socket:
    """Bind the web port first, while still root if started so (ports below 1024)."""
    import errno

    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        hint = {
            errno.EADDRINUSE: " (another process listens there: is linkmon already running?)",
            errno.EACCES: " (a port below 1024 needs root or CAP_NET_BIND_SERVICE)",
            errno.EADDRNOTAVAIL: " (not an address of this host)",
        }.get(exc.errno or 0, "")
        raise SystemExit(f"linkmon: cannot listen on {listen}: {exc.strerror}{hint}") from None
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(False)
    return sock


async def run_daemon(config_path: Path, config: Config, user: str | None = None) -> int:
    """Run until stopped; a start-up fault (web config, the service user, ICMP permission) is
    one clear error line and exit code 2, never a traceback."""
    from probes import ProbeSetupError

    repeats = RepeatFilter()
    guard_against_floods(asyncio.get_running_loop(), repeats)
    try:
        load_web_config(config.server.web_config)
    except WebConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        service = None if user is None else service_user(user)
        if service is not None:
            check_access(service, config_path, _storage_file(config))
    except StartRefused as exc:
        log.error("cannot start: %s", exc)
        return 2
    if user is None and os.geteuid() == 0:
        log.warning(
            "running as root: use --user (or systemd User=/DynamicUser=) so that "
            "only the sockets are opened as root"
        )
    openfiles.raise_limit()
    listener = open_listener(config.server.listen)
    daemon = Daemon(config_path, config)
    reporter = asyncio.get_running_loop().create_task(repeats.run(), name="log-repeats")
    try:
        return await daemon.serve(listener, service)
    except (ProbeSetupError, StartRefused) as exc:
        log.error("cannot start: %s", exc)
    except WebConfigError as exc:
        who = f" as {user}" if user else ""
        log.error("cannot start%s: %s", who, exc)
    finally:
        listener.close()
        reporter.cancel()
        repeats.flush()
    return 2


def _storage_file(config: Config) -> Path | None:
    path = config.storage.path
    return None if str(path) == ":memory:" else path


def _settle_heap() -> None:
    """Move what the config built (hundreds of thousands of objects at national scale) out of
    the collector's reach: a full collection over it held the GIL for 100–250 ms, a stall of
    every probe round due meanwhile. What a reload dropped is collected first (one such pause
    per reload). What stays outside is mostly each probe's latest result, replaced every round:
    it reaches the old generation within seconds, which made a 40 ms full collection every
    20 s at 10,000 links. Full collections now come after 1,000 young ones (tens of minutes);
    linkmon makes little cyclic garbage, and reference counting frees the rest at once."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
