"""`server.web_config`: basic auth, TLS, client certificates, renewal, headers, bad files.

The behaviour that matters is shown on a real `linkmon run` on loopback; the finer points of
the auth cache (CVE-2022-46146) and of re-reading are shown in-process on the middleware.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from linkmon.webconfig import WebConfigError, load_web_config, security_middleware
from tests.support import loopback
from tests.support.loopback import (
    free_port,
    running,
    start_linkmon,
    write_config,
)
from tests.support.staged import Staged

PASSWORD = "rahasia-noc-Nunukan"
HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "deny",
}


def bcrypt_hash(password: str, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def write_web_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def bump(path: Path) -> None:
    """Move the mtime on, so a rewrite within the same clock tick is seen as a change."""
    stamp = time.time_ns() + 2_000_000_000
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Dukcapil test CA")


def write_leaf(ca: trustme.CA, directory: Path, name: str = "server", *identities: str) -> bytes:
    """Issue a certificate into NAME.crt / NAME.key; returns its DER."""
    leaf = ca.issue_cert(*(identities or ("127.0.0.1",)))
    (directory / f"{name}.key").write_bytes(leaf.private_key_pem.bytes())
    pem = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    (directory / f"{name}.crt").write_bytes(pem)
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def client_context(ca: trustme.CA, cert_dir: Path | None = None, name: str = "") -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if cert_dir is not None:
        context.load_cert_chain(cert_dir / f"{name}.crt", cert_dir / f"{name}.key")
    return context


def served_certificate(port: int, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


# -- loading: every bad file names the file and what is wrong ----------------------------------


def test_good_file_is_read_with_paths_beside_it(tmp_path: Path, ca: trustme.CA) -> None:
    write_leaf(ca, tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    hashed = bcrypt_hash(PASSWORD, rounds=4).replace("$2b$", "$2y$")  # htpasswd's flavour
    path = write_web_config(
        tmp_path / "web.yml",
        f"""
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
http_server_config:
  headers: {{Strict-Transport-Security: max-age=31536000, X-Content-Type-Options: nosniff}}
basic_auth_users:
  noc: "{hashed}"
""",
    )
    config = load_web_config(path)
    assert config is not None and config.tls_server_config is not None
    assert config.tls_server_config.cert_file == tmp_path / "server.crt"
    assert config.tls_server_config.client_ca_file == tmp_path / "ca.crt"
    assert config.basic_auth_users == {"noc": hashed}
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert load_web_config(None) is None


GOOD_HASH = "$2b$04$" + "a" * 53
BAD_FILES = {
    "missing": (None, "cannot read it: No such file or directory"),
    "bad-yaml": ("basic_auth_users: {noc: [\n", "not valid YAML"),
    "unknown-key": ("basic_auth_user:\n  noc: x\n", "basic_auth_user: Extra inputs are not"),
    "unknown-nested-key": (
        "http_server_config: {header: {}}\n",
        "http_server_config.header: Extra inputs",
    ),
    "plain-password": (
        "basic_auth_users: {noc: rahasia}\n",
        "basic_auth_users.noc: not a bcrypt hash",
    ),
    "cut-hash": (
        "basic_auth_users: {noc: '$2y$10$tooshort'}\n",
        "basic_auth_users.noc: not a bcrypt hash",
    ),
    "colon-in-user": (f"basic_auth_users: {{'no:c': '{GOOD_HASH}'}}\n", "must not contain ':'"),
    "header-not-allowed": (
        "http_server_config: {headers: {Server: linkmon}}\n",
        "headers.Server: this header cannot be set",
    ),
    "header-bad-value": (
        "http_server_config: {headers: {X-Frame-Options: allow}}\n",
        "headers.X-Frame-Options: must be one of deny, sameorigin",
    ),
    "header-two-lines": (
        'http_server_config: {headers: {Content-Security-Policy: "a\\r\\nX: y"}}',
        "must be one line of ASCII",
    ),
    "cert-missing": (
        "tls_server_config: {cert_file: nope.crt, key_file: server.key}\n",
        "cannot read",
    ),
    "cert-not-pem": (
        "tls_server_config: {cert_file: web.yml, key_file: server.key}\n",
        "are not a matching PEM certificate and key",
    ),
    "cert-is-a-directory": (
        "tls_server_config: {cert_file: ., key_file: server.key}\n",
        "cannot read",
    ),
    "client-auth-without-ca": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key,"
        " client_auth_type: RequireAndVerifyClientCert}\n",
        "RequireAndVerifyClientCert needs client_ca_file",
    ),
    "ca-without-client-auth": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key,"
        " client_ca_file: server.crt}\n",
        "client_ca_file is set but client_auth_type is NoClientCert",
    ),
    "require-any": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key,"
        " client_auth_type: RequireAnyClientCert}\n",
        "RequireAnyClientCert",
    ),
    "bad-auth-type": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key,"
        " client_auth_type: Maybe}\n",
        "client_auth_type: Input should be",
    ),
    "not-a-mapping": ("- noc\n", "(top level): Input should be a valid dictionary"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_with_the_reason(tmp_path: Path, ca: trustme.CA, case: str) -> None:
    text, reason = BAD_FILES[case]
    write_leaf(ca, tmp_path)
    path = tmp_path / "web.yml"
    if text is not None:
        write_web_config(path, text)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert str(path) in str(caught.value)
    assert reason in str(caught.value)


KEYS = [
    "tls_server_config",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "http_server_config",
    "headers",
    "http2",
    "basic_auth_users",
    "noc",
    "X-Frame-Options",
    "Strict-Transport-Security",
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(KEYS + [GOOD_HASH, "server.crt", "."]),
)
documents = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=5),
    ),
    max_leaves=20,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents, raw=st.binary(max_size=200))
def test_any_file_is_loaded_or_refused_with_web_config_error(
    tmp_path: Path, document: object, raw: bytes
) -> None:
    path = tmp_path / "web.yml"
    for content in (yaml.safe_dump(document).encode(), raw):
        path.write_bytes(content)
        try:
            load_web_config(path)
        except WebConfigError as exc:
            assert str(path) in str(exc)


# -- the auth middleware, in-process ----------------------------------------------------------


def app_behind(path: Path) -> Starlette:
    async def ok(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[Route("/metrics", ok), Route("/healthz", ok)], middleware=security_middleware(path)
    )


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    path = write_web_config(
        tmp_path / "web.yml",
        f"""
basic_auth_users:
  noc: "{bcrypt_hash(PASSWORD, rounds=4)}"
  ops: "{bcrypt_hash("ops-password", rounds=4)}"
http_server_config:
  headers: {{X-Content-Type-Options: nosniff}}
""",
    )
    transport = httpx.ASGITransport(app=app_behind(path))
    async with httpx.AsyncClient(transport=transport, base_url="http://linkmon") as client:
        yield client, path


async def test_only_successful_checks_are_cached(guarded: tuple[httpx.AsyncClient, Path]) -> None:
    client, _ = guarded
    assert (await client.get("/metrics", headers=basic("noc", PASSWORD))).status_code == 200
    for user, password in [
        ("noc", "wrong"),
        ("noc", PASSWORD + "x"),
        ("noc", PASSWORD[:-1]),
        ("ops", PASSWORD),
        ("noc", ""),
        (f"noc:{PASSWORD}", ""),
    ]:
        response = await client.get("/metrics", headers=basic(user, password))
        assert response.status_code == 401, (user, password)
    # Failures are not remembered either: the right password still works after them.
    assert (await client.get("/metrics", headers=basic("noc", PASSWORD))).status_code == 200


async def test_knowing_the_hash_does_not_let_anyone_in(
    guarded: tuple[httpx.AsyncClient, Path],
) -> None:
    """CVE-2022-46146: the stored hash, or pieces of the cache key, are no password."""
    client, path = guarded
    assert (await client.get("/metrics", headers=basic("noc", PASSWORD))).status_code == 200
    stored = load_web_config(path).basic_auth_users["noc"]  # type: ignore[union-attr]
    for user, password in [
        ("noc", stored),
        ("noc" + stored, PASSWORD),
        ("noc", stored + PASSWORD),
        ("nocx", PASSWORD),
        ("", PASSWORD),
    ]:
        assert (await client.get("/metrics", headers=basic(user, password))).status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Basic !!!",
        "Bearer abc",
        "Basic bm9j",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ],
)
async def test_malformed_credentials_are_401_not_500(
    guarded: tuple[httpx.AsyncClient, Path], header: str
) -> None:
    client, _ = guarded
    response = await client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="linkmon"')
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_changed_password_applies_without_restart(
    guarded: tuple[httpx.AsyncClient, Path],
) -> None:
    client, path = guarded
    assert (await client.get("/metrics", headers=basic("noc", PASSWORD))).status_code == 200
    write_web_config(path, f"basic_auth_users: {{noc: '{bcrypt_hash('baru', rounds=4)}'}}\n")
    bump(path)
    assert (await client.get("/metrics", headers=basic("noc", PASSWORD))).status_code == 401
    assert (await client.get("/metrics", headers=basic("noc", "baru"))).status_code == 200
    assert (await client.get("/metrics", headers=basic("ops", "ops-password"))).status_code == 401


async def test_a_file_broken_after_start_fails_closed_until_fixed(
    guarded: tuple[httpx.AsyncClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, path = guarded
    good = path.read_text()
    write_web_config(path, "basic_auth_users: {noc: [\n")
    bump(path)
    for _ in range(3):
        response = await client.get("/metrics", headers=basic("noc", PASSWORD))
        assert response.status_code == 503
    assert (await client.get("/healthz")).status_code == 200
    assert sum("not valid YAML" in r.getMessage() for r in caplog.records) == 1  # once
    write_web_config(path, good)
    bump(path)
    assert (await client.get("/metrics", headers=basic("noc", PASSWORD))).status_code == 200


# -- a real linkmon -----------------------------------------------------------------------------


@pytest.fixture
def port() -> int:
    return free_port()


def test_basic_auth_on_a_running_linkmon(tmp_path: Path, port: int) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        f"""
basic_auth_users:
  noc: "{bcrypt_hash(PASSWORD)}"
http_server_config:
  headers: {HEADERS}
""".replace("'", '"'),
    )
    config = write_config(tmp_path / "linkmon.yml", port=port, web_config=web)
    with running(config, port=port) as linkmon:
        for path in ("/metrics", "/api/v1/status", "/", "/readyz", "/api/v1/openapi.json"):
            refused = linkmon.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
            assert "linkmon_" not in refused.text and "kab-a" not in refused.text
        assert linkmon.post("/-/reload").status_code == 401
        health = linkmon.get("/healthz")
        assert health.status_code == 200
        assert health.headers["strict-transport-security"] == "max-age=31536000"

        right = basic("noc", PASSWORD)
        metrics = linkmon.get("/metrics", headers=right)
        assert metrics.status_code == 200 and "linkmon_probe_success" in metrics.text
        for name, expected in HEADERS.items():
            assert metrics.headers[name] == expected
        assert linkmon.get("/api/v1/status", headers=right).json()["agent"]["name"] == "hardening"
        # A failed check after a good one is not answered from the cache.
        assert linkmon.get("/metrics", headers=basic("noc", PASSWORD + "!")).status_code == 401
        assert linkmon.get("/metrics", headers=basic("noc", PASSWORD)).status_code == 200
        assert "Traceback" not in linkmon.output()


@pytest.fixture
def tls_files(tmp_path: Path, ca: trustme.CA) -> Path:
    write_leaf(ca, tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    return tmp_path


def test_tls_with_a_test_ca(tls_files: Path, port: int, ca: trustme.CA) -> None:
    web = write_web_config(
        tls_files / "web.yml", "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
    )
    config = write_config(tls_files / "linkmon.yml", port=port, web_config=web)
    with running(config, port=port, scheme="https", verify=client_context(ca)) as linkmon:
        response = linkmon.get("/metrics")
        assert response.status_code == 200
        assert "linkmon_probe_success" in response.text
        with pytest.raises(httpx.TransportError):  # plain HTTP gets no answer it can read
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(
                f"https://127.0.0.1:{port}/metrics", timeout=5, verify=client_context(trustme.CA())
            )
        assert linkmon.get("/healthz").status_code == 200


def test_client_certificate_required(tls_files: Path, port: int, ca: trustme.CA) -> None:
    write_leaf(ca, tls_files, "noc", "noc@kab-nunukan.example")
    stranger_ca = trustme.CA()
    write_leaf(stranger_ca, tls_files, "stranger", "noc@kab-nunukan.example")
    web = write_web_config(
        tls_files / "web.yml",
        """
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
""",
    )
    config = write_config(tls_files / "linkmon.yml", port=port, web_config=web)
    url = f"https://127.0.0.1:{port}/metrics"
    with running(
        config, port=port, scheme="https", verify=client_context(ca, tls_files, "noc")
    ) as linkmon:
        assert linkmon.get("/metrics").status_code == 200
        for refused in (client_context(ca), client_context(ca, tls_files, "stranger")):
            with pytest.raises(httpx.TransportError):
                httpx.get(url, verify=refused, timeout=5)
        # Health is open to auth, not to TLS policy: without a certificate it is refused too.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=client_context(ca), timeout=5)
        assert linkmon.get("/healthz").status_code == 200
        assert linkmon.process.poll() is None


def test_renewed_certificate_is_served_without_restart(
    tls_files: Path, port: int, ca: trustme.CA
) -> None:
    web = write_web_config(
        tls_files / "web.yml", "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
    )
    config = write_config(tls_files / "linkmon.yml", port=port, web_config=web)
    first = ssl.PEM_cert_to_DER_cert((tls_files / "server.crt").read_text())
    trust = client_context(ca)
    with running(config, port=port, scheme="https", verify=trust) as linkmon:
        assert served_certificate(port, trust) == first
        renewal = tls_files / "renewal"
        renewal.mkdir()
        second = write_leaf(ca, renewal)
        # A renewal lands one file at a time: with the new certificate beside the old key,
        # the last good pair is served, never a broken handshake.
        os.replace(renewal / "server.crt", tls_files / "server.crt")
        assert served_certificate(port, trust) == first
        os.replace(renewal / "server.key", tls_files / "server.key")
        assert served_certificate(port, trust) == second
        assert linkmon.get("/metrics").status_code == 200
        assert linkmon.process.poll() is None  # same process, no restart


START_FAILURES = {
    "missing-file": (None, "server.web_config: no such file"),
    "bad-yaml": ("basic_auth_users: [", "not valid YAML"),
    "unknown-key": ("tls_config: {}\n", "tls_config: Extra inputs are not permitted"),
    "not-bcrypt": ("basic_auth_users: {noc: rahasia}\n", "basic_auth_users.noc: not a bcrypt"),
    "unreadable-cert": ("tls_server_config: {cert_file: ., key_file: server.key}\n", "cannot read"),
}


@pytest.mark.parametrize("case", sorted(START_FAILURES))
def test_bad_web_config_stops_the_start_with_the_reason(
    tls_files: Path, port: int, case: str
) -> None:
    text, reason = START_FAILURES[case]
    web = tls_files / "web.yml"
    if text is not None:
        write_web_config(web, text)
    config = write_config(tls_files / "linkmon.yml", port=port, web_config=web)
    linkmon = start_linkmon(config, port=port)
    try:
        assert linkmon.wait_exit() == 2
    finally:
        linkmon.kill()
    output = linkmon.output()
    assert reason in output and str(web) in output
    assert "Traceback" not in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory the unprivileged user can read and write (pytest's tmp_path is root-only)."""
    with loopback.nobody_dir("linkmon-webconfig-") as path:
        yield path


@pytest.mark.root
def test_key_unreadable_by_the_service_user_stops_the_start(
    nobody_dir: Path, port: int, ca: trustme.CA, staged_for_nobody: Staged
) -> None:
    """Checked as root it is fine; as `--user nobody` it is not: refused, never plain HTTP."""
    write_leaf(ca, nobody_dir)
    (nobody_dir / "server.key").chmod(0o600)  # root's
    web = write_web_config(
        nobody_dir / "web.yml", "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
    )
    web.chmod(0o644)
    config = write_config(
        nobody_dir / "linkmon.yml", port=port, web_config=web, storage=nobody_dir / "state.db"
    )
    linkmon = start_linkmon(
        config,
        port=port,
        extra=["--user", "nobody"],
        command=staged_for_nobody.linkmon,
        env=staged_for_nobody.env,
    )
    try:
        assert linkmon.wait_exit() == 2
    finally:
        linkmon.kill()
    output = linkmon.output()
    assert "cannot start as nobody" in output and "Permission denied" in output, output
    assert "Traceback" not in output
