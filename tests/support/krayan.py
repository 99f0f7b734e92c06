"""Krayan's links in a small config: what the path tests and `linkmon trace` trace towards."""

from __future__ import annotations

from pathlib import Path

from linkmon.config import Config, parse_config

DC = "198.18.1.1"

CONFIG = """
agent: {{name: kec-krayan, timezone: Asia/Makassar, language: {language}}}
storage: {{path: {db}}}
sites:
  - {{id: pusat-dc, kind: pusat, name: Data Center Ditjen Dukcapil, timezone: Asia/Jakarta}}
  - {{id: kab-nunukan, kind: kabupaten, name: Disdukcapil Kabupaten Nunukan}}
  - {{id: kec-krayan, kind: kecamatan, parent: kab-nunukan, name: Kecamatan Krayan}}
links:
  - {{id: kec-krayan--dc, from: kec-krayan, to: pusat-dc, network: vpn,
     probes: [{{kind: icmp, target: {target}}}]}}
  - {{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: vpn,
     probes: [{{kind: tcp, target: "{target}:{port}"}}, {{kind: icmp, target: 198.18.0.1}}]}}
  - {{id: kab-nunukan--dc, from: kab-nunukan, to: pusat-dc, network: vpn,
     probes: [{{kind: http, url: "https://[::1]/health"}},
              {{kind: http, url: "https://{target}/health", source: {source}}}]}}
"""


def make_config(
    tmp_path: Path,
    target: str = DC,
    language: str = "en",
    port: int = 9000,
    source: str = "198.18.30.8",
) -> Config:
    text = CONFIG.format(
        db=tmp_path / "state.db", target=target, language=language, port=port, source=source
    )
    (tmp_path / "config.yml").write_text(text)
    return parse_config(text)
