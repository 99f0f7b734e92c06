"""A stand-in for the Telegram Bot API on loopback, for tests of senders that speak to it.

The real ``api.telegram.org`` cannot be reached from here (and must never be from a test), so
this answers the way it does (REFERENCE.md, "Telegram Bot API"): ``POST
{api_url}/bot{token}/sendMessage`` with ``chat_id`` and ``text`` (JSON, form or query
parameters) gets ``{"ok": true, "result": {"message_id": N, "chat": {...}, "text": ...}}``
with message ids counting up per chat; ``getMe`` answers with a bot; a missing ``chat_id`` or
``text`` gets the real API's 400 answer; an unknown method its 404. Every request is
recorded, with the token it came with, for the test to read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class BotCall:
    """One request as the stand-in received it."""

    token: str
    method: str
    params: dict[str, Any]


class TelegramBotApi:
    """The stand-in server in a thread of the test process; ``url`` is its ``api_url``."""

    def __init__(self) -> None:
        self.calls: list[BotCall] = []
        self._lock = threading.Lock()
        self._next_id: dict[str, int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def messages(self) -> list[BotCall]:
        """The ``sendMessage`` calls so far, in arrival order."""
        with self._lock:
            return [call for call in self.calls if call.method == "sendMessage"]

    def answer(self, call: BotCall) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append(call)
            if call.method == "getMe":
                bot = {"id": 100000001, "is_bot": True, "first_name": "linkmon", "username": "x"}
                return 200, {"ok": True, "result": bot}
            if call.method != "sendMessage":
                return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            chat, text = call.params.get("chat_id"), call.params.get("text")
            if not chat:
                return 400, _bad_request("chat_id is empty")
            if not text:
                return 400, _bad_request("message text is empty")
            key = str(chat)
            self._next_id[key] = message_id = self._next_id.get(key, 0) + 1
            result = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {
                    "id": int(key),
                    "type": "supergroup" if key.startswith("-") else "private",
                },
                "text": text,
            }
            return 200, {"ok": True, "result": result}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _bad_request(why: str) -> dict[str, Any]:
    return {"ok": False, "error_code": 400, "description": f"Bad Request: {why}"}


def _handler(api: TelegramBotApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._serve(raw)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(b"")

        def _serve(self, raw: bytes) -> None:
            parts = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(parts.query))
            kind = self.headers.get("Content-Type", "")
            if raw and "json" in kind:
                params.update(json.loads(raw))
            elif raw:
                params.update(parse_qsl(raw.decode()))
            bot, _, method = parts.path.lstrip("/").partition("/")
            if not bot.startswith("bot"):
                status, body = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            else:
                status, body = api.answer(BotCall(bot.removeprefix("bot"), method, params))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def telegram_bot_api() -> Iterator[TelegramBotApi]:
    api = TelegramBotApi()
    try:
        yield api
    finally:
        api.stop()
