"""A real webhook receiver for tests, run as its own process.

``python -m tests.support.receiver --log FILE [--port N] [--host ADDR]`` listens on 127.0.0.1
(or ADDR), prints
``listening <port>`` when ready and appends every POST to FILE as one JSON line:
``{"at", "path", "answered", "headers", "body"}``. Told to fail (``POST /-/fail`` with
``{"status": 503, "seconds": 30}``) it answers that status until the time is up — the
requests are still recorded, with the status they got. A body that is not JSON (a request
cut short) is answered 400.

:class:`ReceiverProcess` starts and stops it from a test (by PID, also on failure).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.child import start_helper, stop_process


class _State:
    def __init__(self, log: Path, status: int) -> None:
        self.log = log
        self.lock = threading.Lock()
        self.fail_status = status
        self.fail_until = 0.0

    def answer(self) -> int:
        return self.fail_status if time.time() < self.fail_until else 200


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes = b"{}") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._reply(200 if self.path == "/-/ready" else 404)

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/-/fail":
                order = json.loads(raw)
                with state.lock:
                    state.fail_status = int(order.get("status", 503))
                    state.fail_until = time.time() + float(order["seconds"])
                self._reply(200)
                return
            with state.lock:
                status = state.answer()
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    # Cut short (a sender killed mid-request) or not JSON: refused, as a real
                    # receiver would; the sender never had it.
                    body, status = raw.decode("utf-8", "replace"), 400
                record = {
                    "at": time.time(),
                    "path": self.path,
                    "answered": status,
                    "headers": dict(self.headers.items()),
                    "body": body,
                }
                with state.log.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._reply(status)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--fail-seconds",
        type=float,
        default=0.0,
        help="answer --fail-status for this long after start",
    )
    parser.add_argument("--fail-status", type=int, default=503)
    args = parser.parse_args()
    state = _State(args.log, args.fail_status)
    state.fail_until = time.time() + args.fail_seconds
    server = ThreadingHTTPServer((args.host, args.port), _handler(state))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


class ReceiverProcess:
    """The receiver as a child process; use :func:`running_receiver`."""

    def __init__(
        self, log: Path, port: int = 0, fail_seconds: float = 0.0, fail_status: int = 503
    ) -> None:
        self.log = log
        self.proc, line = start_helper(
            "tests.support.receiver",
            [
                "--log",
                str(log),
                "--port",
                str(port),
                "--fail-seconds",
                str(fail_seconds),
                "--fail-status",
                str(fail_status),
            ],
            "listening ",
            "test receiver did not start",
        )
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def fail(self, seconds: float, status: int = 503) -> None:
        httpx.post(
            f"http://127.0.0.1:{self.port}/-/fail",
            json={"status": status, "seconds": seconds},
            timeout=5,
        )

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies the receiver accepted (answered 200), in arrival order."""
        return [r["body"] for r in self.records() if r["answered"] == 200]

    def stop(self) -> None:
        stop_process(self.proc)


@contextmanager
def running_receiver(log: Path, **kw: Any) -> Iterator[ReceiverProcess]:
    receiver = ReceiverProcess(log, **kw)
    try:
        yield receiver
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
