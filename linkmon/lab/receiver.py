"""An alert receiver for the demo: prints each alert of an Alertmanager webhook, one line each.

It stands in for the Telegram/WhatsApp relay a NOC would run. Started inside the hub's
namespace (where linkmon sends to ``127.0.0.1:PORT``); the demo reads its stdout.

Run: ``python -m linkmon.lab.receiver --port 9999``
"""

from __future__ import annotations

import argparse
import contextlib
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def describe(alert: dict[str, Any]) -> str:
    """``FIRING kec-krayan--kab: <summary>`` from one alert of a webhook payload."""
    labels = alert.get("labels", {})
    what = labels.get("link") or labels.get("site") or labels.get("alertname", "?")
    summary = alert.get("annotations", {}).get("summary", "")
    return f"{str(alert.get('status', '?')).upper()} {what}: {summary}".rstrip(": ")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        try:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            lines = [describe(a) for a in payload["alerts"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.send_error(400, f"not an Alertmanager webhook payload: {exc}")
            return
        for line in lines:
            print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Quiet: the alerts are the output."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), _Handler)
    print("ready", flush=True)
    # Ctrl-C in the demo's terminal reaches the whole process group: stop quietly.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
