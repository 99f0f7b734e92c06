"""`server.web_config`: TLS, basic auth and headers, in Prometheus exporter-toolkit's format.

The file is checked at start (a bad file stops the daemon with the reason) and re-read when
it changes, so renewed certificates and changed passwords apply without a restart. Only
successful password checks are cached, keyed by the stored hash *and* a digest of the
password given — a failed or partial check is never cached (CVE-2022-46146).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from pathlib import Path
from typing import Any, Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz", "/-/healthy"})

ClientAuth = Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]


class WebConfigError(Exception):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSServerConfig(_Strict):
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"


class HTTPServerConfig(_Strict):
    headers: dict[str, str] = Field(default_factory=dict)
    http2: bool = True


class WebConfig(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


def load_web_config(path: Path | None) -> WebConfig | None:
    if path is None:
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise WebConfigError(f"web config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise WebConfigError(f"web config {path}: not valid YAML: {exc}") from None
    try:
        config = WebConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors())
        raise WebConfigError(f"web config {path}: {problems}") from None
    base = path.parent
    tls = config.tls_server_config
    if tls is not None:
        tls = tls.model_copy(update={
            "cert_file": base / tls.cert_file, "key_file": base / tls.key_file,
            "client_ca_file": base / tls.client_ca_file if tls.client_ca_file else None})
        if tls.client_auth_type.startswith(("Require", "Verify")) and tls.client_ca_file is None \
                and tls.client_auth_type != "RequireAnyClientCert":
            raise WebConfigError(
                f"web config {path}: client_auth_type {tls.client_auth_type} needs client_ca_file")
        _build_ssl_context(tls, path)
        config = config.model_copy(update={"tls_server_config": tls})
    for user, hashed in config.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(
                f"web config {path}: basic_auth_users.{user}: not a bcrypt hash")
    return config


def _build_ssl_context(tls: TLSServerConfig, source: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = {
        "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}[tls.min_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file is not None:
            context.load_verify_locations(tls.client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"web config {source}: tls_server_config: {exc}") from None
    context.verify_mode = {
        "NoClientCert": ssl.CERT_NONE, "RequestClientCert": ssl.CERT_OPTIONAL,
        "RequireAnyClientCert": ssl.CERT_REQUIRED, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}[tls.client_auth_type]
    return context


class _Reloading:
    """The web config as of the file's last change; re-read when its mtime moves."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self.config: WebConfig | None = None
        self.refresh()

    def refresh(self) -> WebConfig | None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            return self.config  # keep serving with the last good file
        if stamp != self._stamp:
            try:
                self.config = load_web_config(self.path)
            except WebConfigError:
                pass  # a half-written file: keep the last good one until it is whole
            self._stamp = stamp
        return self.config


class _Security:
    """ASGI middleware: basic auth (except health) and configured response headers."""

    def __init__(self, app: ASGIApp, source: _Reloading) -> None:
        self.app = app
        self.source = source
        self._verified: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.source.refresh()
        assert config is not None
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                   for k, v in config.http_server_config.headers.items()]

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start" and headers:
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        if config.basic_auth_users and scope["path"] not in OPEN_PATHS \
                and not await self._authorised(scope, config):
            await send_with_headers({
                "type": "http.response.start", "status": 401,
                "headers": [(b"www-authenticate", b'Basic realm="linkmon"'),
                            (b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Unauthorized\n"})
            return
        await self.app(scope, receive, send_with_headers)

    async def _authorised(self, scope: Scope, config: WebConfig) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        if not header.lower().startswith(b"basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        stored = config.basic_auth_users.get(user.decode("utf-8", "replace"))
        if stored is None:
            return False
        key = hashlib.sha256(user + b"\0" + stored.encode() + b"\0" + password).digest()
        if any(hmac.compare_digest(key, known) for known in self._verified):
            return True
        ok = await asyncio.to_thread(bcrypt.checkpw, password, stored.encode())
        if ok:
            self._verified.add(key)
        return ok


def security_middleware(path: Path | None) -> list[Middleware]:
    if path is None:
        return []
    return [Middleware(_Security, source=_Reloading(path))]


def tls_context(path: Path | None) -> ssl.SSLContext | None:
    """The listener's TLS context; certificates are re-read at the next handshake after the
    files change, so a renewed certificate applies without a restart."""
    if path is None:
        return None
    source = _Reloading(path)
    config = source.config
    if config is None or config.tls_server_config is None:
        return None
    current = {"stamp": source._stamp, "context": _build_ssl_context(config.tls_server_config, path)}

    def pick_context(sock: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        fresh = source.refresh()
        if source._stamp != current["stamp"] and fresh and fresh.tls_server_config:
            try:
                current["context"] = _build_ssl_context(fresh.tls_server_config, path)
            except WebConfigError:
                pass
            current["stamp"] = source._stamp
        sock.context = current["context"]  # type: ignore[assignment]

    listener_context = _build_ssl_context(config.tls_server_config, path)
    listener_context.sni_callback = pick_context  # type: ignore[assignment]
    return listener_context
