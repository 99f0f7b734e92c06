"""`server.web_config`: TLS, basic auth and headers, in Prometheus exporter-toolkit's format.

The file is checked strictly at start: a bad file (or one the daemon's user cannot read)
stops the daemon with the reason, never a silent fall-back to plain HTTP or no auth. After
that it is re-read when it *or a certificate file it names* changes, so renewed certificates
and changed passwords apply without a restart. If a later edit breaks it, requests that need
auth are refused (fail closed) and TLS keeps the last good certificate until it is fixed.

Only successful password checks are cached, under a keyed digest of user, stored hash and
password together — a failed, partial or unknown-user check is never cached (the cache
poisoning of CVE-2022-46146). bcrypt runs one at a time, off the event loop, so a flood of
wrong passwords costs one core at most and never stalls probing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
from pathlib import Path
from typing import Any, Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("linkmon")

OPEN_PATHS = frozenset({"/healthz", "/-/healthy"})

ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]

# exporter-toolkit's list: only these may be set, and enumerated ones only to these values.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "strict-transport-security": (),
    "x-content-type-options": ("nosniff",),
    "x-frame-options": ("deny", "sameorigin"),
    "x-xss-protection": (),
    "content-security-policy": (),
}
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_VERIFIED_MAX = 1024  # successful logins remembered; more distinct ones than this is not a NOC


class WebConfigError(Exception):
    """The web config cannot be used; the message names the file and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSServerConfig(_Strict):
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"

    @property
    def files(self) -> tuple[Path, ...]:
        return (
            self.cert_file,
            self.key_file,
            *((self.client_ca_file,) if self.client_ca_file else ()),
        )


class HTTPServerConfig(_Strict):
    headers: dict[str, str] = Field(default_factory=dict)
    http2: bool = True


class WebConfig(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


def load_web_config(path: Path | None) -> WebConfig | None:
    """Read and check the whole file, certificates included; WebConfigError says what is wrong."""
    return None if path is None else _read(path)


def _read(path: Path) -> WebConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise WebConfigError(f"web config {path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise WebConfigError(f"web config {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise WebConfigError(f"web config {path}: not valid YAML: {exc}") from None
    try:
        config = WebConfig.model_validate(raw)
    except ValidationError as exc:
        found = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise WebConfigError(f"web config {path}: {found}") from None
    problems = [
        *_user_problems(config.basic_auth_users),
        *_header_problems(config.http_server_config.headers),
    ]
    if problems:
        raise WebConfigError(f"web config {path}: {'; '.join(problems)}")
    tls = config.tls_server_config
    if tls is not None:
        base = path.parent
        tls = tls.model_copy(
            update={
                "cert_file": base / tls.cert_file,
                "key_file": base / tls.key_file,
                "client_ca_file": base / tls.client_ca_file if tls.client_ca_file else None,
            }
        )
        _build_ssl_context(tls, path)
        config = config.model_copy(update={"tls_server_config": tls})
    return config


def _user_problems(users: dict[str, str]) -> list[str]:
    problems = []
    for user, hashed in users.items():
        if not user or ":" in user:
            problems.append(
                f"basic_auth_users.{user}: a user name must be non-empty and must not contain ':'"
            )
        if not _BCRYPT.fullmatch(hashed):
            problems.append(
                f"basic_auth_users.{user}: not a bcrypt hash (make one with "
                "htpasswd -nBC 10 \"\" | tr -d ':\\n')"
            )
    return problems


def _header_problems(headers: dict[str, str]) -> list[str]:
    problems = []
    for name, value in headers.items():
        allowed = ALLOWED_HEADERS.get(name.lower())
        where = f"http_server_config.headers.{name}"
        if allowed is None:
            problems.append(
                f"{where}: this header cannot be set (allowed: "
                "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
                "X-XSS-Protection, Content-Security-Policy)"
            )
        elif allowed and value.lower() not in allowed:
            problems.append(f"{where}: must be one of {', '.join(allowed)}, got {value!r}")
        elif any(c in value for c in "\r\n\0") or not value.isascii():
            problems.append(f"{where}: the value must be one line of ASCII")
    return problems


def _build_ssl_context(tls: TLSServerConfig, source: Path) -> ssl.SSLContext:
    where = f"web config {source}: tls_server_config"
    if tls.client_auth_type == "RequireAnyClientCert":
        raise WebConfigError(
            f"{where}.client_auth_type: RequireAnyClientCert (a certificate required but not "
            "verified) is not supported here; use RequireAndVerifyClientCert with client_ca_file"
        )
    verify = tls.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
    if verify and tls.client_ca_file is None:
        raise WebConfigError(
            f"{where}: client_auth_type {tls.client_auth_type} needs client_ca_file"
        )
    if tls.client_auth_type == "NoClientCert" and tls.client_ca_file is not None:
        raise WebConfigError(
            f"{where}: client_ca_file is set but client_auth_type is "
            "NoClientCert: set client_auth_type (e.g. RequireAndVerifyClientCert)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }[tls.min_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as exc:  # before OSError: it is one
        raise WebConfigError(
            f"{where}: cert_file {tls.cert_file} and key_file {tls.key_file} "
            f"are not a matching PEM certificate and key ({exc.reason})"
        ) from None
    except OSError as exc:
        raise WebConfigError(
            f"{where}: cannot read {exc.filename or 'cert_file/key_file'}: {exc.strerror}"
        ) from None
    if verify and tls.client_ca_file is not None:
        try:
            context.load_verify_locations(tls.client_ca_file)
        except ssl.SSLError as exc:
            raise WebConfigError(
                f"{where}: client_ca_file {tls.client_ca_file} holds no PEM "
                f"certificate ({exc.reason})"
            ) from None
        except OSError as exc:
            raise WebConfigError(
                f"{where}: cannot read client_ca_file {tls.client_ca_file}: {exc.strerror}"
            ) from None
        context.verify_mode = (
            ssl.CERT_REQUIRED if tls.client_auth_type.startswith("Require") else ssl.CERT_OPTIONAL
        )
    return context


_Stamp = tuple[tuple[int, int, int] | None, ...]


class WebConfigSource:
    """The web config as of the last change to its file or to a certificate file it names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.good = _read(path)  # strict: a bad file stops the start
        self.config: WebConfig | None = self.good
        self._stamp = self._stamp_now()
        self._reported: str | None = None

    def _stamp_now(self) -> _Stamp:
        tls = self.good.tls_server_config
        stamps: list[tuple[int, int, int] | None] = []
        for file in (self.path, *(tls.files if tls else ())):
            try:
                st = os.stat(file)
                stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def current(self) -> WebConfig | None:
        """The config now, re-read if a file moved; None while it is broken (fail closed)."""
        stamp = self._stamp_now()
        if stamp == self._stamp:
            return self.config
        self._stamp = stamp  # taken before reading: a change during the read is seen next time
        try:
            self.config = self.good = _read(self.path)
        except WebConfigError as exc:
            self.config = None
            if str(exc) != self._reported:
                log.error(
                    "%s — requests that need auth are refused and TLS keeps the last "
                    "good certificate until it is fixed",
                    exc,
                )
                self._reported = str(exc)
        else:
            if self._reported is not None:
                log.info("web config %s is good again", self.path)
            self._reported = None
        return self.config


class _Security:
    """ASGI middleware: basic auth (except health) and the configured response headers."""

    def __init__(self, app: ASGIApp, source: WebConfigSource) -> None:
        self.app = app
        self.source = source
        self._secret = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._bcrypt = asyncio.Semaphore(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        config = self.source.current()
        headers = (
            []
            if config is None
            else [
                (k.lower().encode("ascii"), v.encode("ascii"))
                for k, v in config.http_server_config.headers.items()
            ]
        )

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start" and headers:
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send_with_headers)
            return
        if config is None:
            await _refuse(scope, send, 503, b"web config is broken: see the linkmon log\n", [])
        elif config.basic_auth_users and not await self._authorised(scope, config):
            await _refuse(
                scope,
                send_with_headers,
                401,
                b"Unauthorized\n",
                [(b"www-authenticate", b'Basic realm="linkmon", charset="UTF-8"')],
            )
        else:
            await self.app(scope, receive, send_with_headers)

    async def _authorised(self, scope: Scope, config: WebConfig) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        if header[:6].lower() != b"basic ":
            return False
        try:
            user_raw, colon, password = base64.b64decode(
                header[6:].strip(), validate=True
            ).partition(b":")
            user = user_raw.decode("utf-8")
        except (binascii.Error, ValueError):
            return False
        stored = config.basic_auth_users.get(user)
        if not colon or stored is None:
            # A check as costly as the dearest real one, so timing does not tell who exists.
            dearest = max(config.basic_auth_users.values(), key=lambda hashed: hashed[4:6])
            async with self._bcrypt:
                await asyncio.to_thread(_checkpw, password, dearest.encode())
            return False
        key = hmac.digest(
            self._secret,
            b"\0".join(
                hashlib.sha256(part).digest() for part in (user_raw, stored.encode(), password)
            ),
            "sha256",
        )
        if key in self._verified:
            return True
        async with self._bcrypt:
            ok = await asyncio.to_thread(_checkpw, password, stored.encode())
        if ok:
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified.add(key)
        return ok


def _checkpw(password: bytes, hashed: bytes) -> bool:
    """bcrypt's verdict; a password past bcrypt's 72 bytes fails, as in Go's bcrypt."""
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


async def _refuse(
    scope: Scope, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def security_middleware(path: Path | None) -> list[Middleware]:
    """Auth and headers for the web app; raises WebConfigError if the file is bad now."""
    if path is None:
        return []
    return [Middleware(_Security, source=WebConfigSource(path))]


def tls_context(path: Path | None) -> ssl.SSLContext | None:
    """The listener's TLS context, or None without ``tls_server_config``.

    Certificates are read again at the first handshake after their files (or the web config)
    change, so a renewed certificate applies without a restart; client_auth_type and
    min_version are fixed per listener and need a restart. Raises WebConfigError if the
    file is bad now.
    """
    if path is None:
        return None
    source = WebConfigSource(path)
    if source.good.tls_server_config is None:
        return None
    return _RenewingTLS(source).listener


class _RenewingTLS:
    """Swaps in a context with the renewed certificate during the handshake (SNI callback,
    which OpenSSL calls for every ClientHello, with or without a server name)."""

    def __init__(self, source: WebConfigSource) -> None:
        self.source = source
        self.config = source.good
        tls = source.good.tls_server_config
        assert tls is not None
        self.fixed = (tls.client_auth_type, tls.min_version)
        self.context = _build_ssl_context(tls, source.path)
        self.listener = _build_ssl_context(tls, source.path)
        self.listener.sni_callback = self._pick

    def _pick(self, sock: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        fresh = self.source.current()
        if fresh is not None and fresh is not self.config and fresh.tls_server_config:
            tls = fresh.tls_server_config
            if (tls.client_auth_type, tls.min_version) != self.fixed:
                log.warning(
                    "web config %s: client_auth_type and min_version changes apply after a restart",
                    self.source.path,
                )
            try:
                self.context = _build_ssl_context(tls, self.source.path)
            except WebConfigError as exc:  # the files changed again since the check
                log.error("%s — keeping the last good certificate", exc)
            self.config = fresh
        sock.context = self.context
