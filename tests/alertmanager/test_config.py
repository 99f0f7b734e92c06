"""The shipped Alertmanager config: Debian's amtool accepts it and routes as documented.

``amtool config routes test --verify.receivers`` exits non-zero when the receivers an alert
reaches differ from the expected ones, in order: each case names them exactly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.shipped_alertmanager import KALTIM, NUNUKAN, ROOT, SHIPPED

AMTOOL = "amtool"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_amtool_check_config_passes() -> None:
    done = amtool("check-config", str(SHIPPED))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert " - 4 inhibit rules" in done.stdout and " - 1 templates" in done.stdout


def test_amtool_check_config_loads_the_template(tmp_path: Path) -> None:
    """check-config parses the template file: a broken copy of it fails the check."""
    broken = tmp_path / "alertmanager.yml"
    (tmp_path / "templates").mkdir()
    template = (SHIPPED.parent / "templates" / "linkmon.tmpl").read_text(encoding="utf-8")
    (tmp_path / "templates" / "linkmon.tmpl").write_text(template + "{{ end }}")
    broken.write_text(SHIPPED.read_text(encoding="utf-8"))
    done = amtool("check-config", str(broken))
    assert done.returncode != 0
    assert "linkmon.tmpl" in done.stdout + done.stderr


ROUTES = [
    # A kecamatan of Nunukan: its kabupaten's on-call group (a warning: not the kabid).
    (
        ["alertname=LinkDegraded", "kabupaten=kab-nunukan", "site=kec-krayan", "severity=warning"],
        "disdukcapil-nunukan",
    ),
    # A critical of Nunukan: the Kepala Bidang as well, and the group still gets it.
    (
        ["alertname=LinkDown", "kabupaten=kab-nunukan", "site=kec-krayan", "severity=critical"],
        "kabid-nunukan,disdukcapil-nunukan",
    ),
    # Another kabupaten of Kalimantan Utara without a route of its own: the province.
    (["alertname=LinkDown", "kabupaten=kab-malinau", "severity=critical"], "diskominfo-kaltara"),
    # Kalimantan Timur: by kabupaten, and the JIP hub's uplinks (no kabupaten) by agent.
    (["alertname=LinkDown", "kabupaten=kota-samarinda"], "diskominfo-kaltim"),
    (["alertname=LinkDown", "agent=jip-kaltim", "link=prov-kaltim--dc"], "diskominfo-kaltim"),
    # A kabupaten no route knows, and an agent alert without a kabupaten: the national NOC.
    (["alertname=LinkDown", "kabupaten=kab-merauke", "severity=critical"], "noc-pusat"),
    (["alertname=LinkmonDown", "agent=kab-nunukan", "severity=critical"], "noc-pusat"),
]


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[r for _, r in ROUTES])
def test_route(labels: list[str], receivers: str) -> None:
    done = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={SHIPPED}",
        f"--verify.receivers={receivers}",
        *labels,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receivers


def test_a_wrong_expectation_fails() -> None:
    """The route cases prove something: amtool fails when the receivers differ."""
    done = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={SHIPPED}",
        "--verify.receivers=disdukcapil-nunukan",
        "alertname=LinkDown",
        "kabupaten=kab-nunukan",
        "severity=critical",
    )
    assert done.returncode != 0


def test_no_secret_in_the_shipped_file() -> None:
    config = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    tokens = {t["bot_token"] for r in config["receivers"] for t in r.get("telegram_configs", [])}
    assert tokens == {"BOT_TOKEN_PLACEHOLDER"}


def test_routes_and_inhibitions_use_the_ids_linkmon_configs_use() -> None:
    """The matchers name kabupaten, agents and the DC site by their ids in config/: a
    renamed site there must fail here, not silently route to the default."""
    text = SHIPPED.read_text(encoding="utf-8")
    nunukan, kaltim = (yaml.safe_load(p.read_text(encoding="utf-8")) for p in (NUNUKAN, KALTIM))
    site_ids = {s["id"] for c in (nunukan, kaltim) for s in c["sites"]}
    for site in ("kab-nunukan", "kota-samarinda", "kab-kutai-kartanegara", "pusat-dc"):
        assert site in site_ids and site in text
    assert kaltim["agent"]["name"] == "jip-kaltim"
    kecamatan = [s["id"] for s in nunukan["sites"] if s["kind"] == "kecamatan"]
    assert kecamatan and all(s.startswith("kec-") for s in kecamatan)
