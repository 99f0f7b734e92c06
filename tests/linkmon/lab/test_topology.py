"""The lab file model: what the shipped lab contains, how routes go, and every error's path."""

from __future__ import annotations

import ipaddress
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from linkmon.config import IcmpProbe, TcpProbe, load_config
from linkmon.lab import SHIPPED_LAB
from linkmon.lab.topology import LabError, TopologyError, load_topology, parse_topology

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
SMALL = """
sites:
  - {id: pusat-dc, kind: pusat, address: 198.18.1.1, services: {http: 80, tcp: [9000]}}
  - {id: kab-nunukan, kind: kabupaten, address: 198.18.0.1}
  - {id: kec-krayan, kind: kecamatan, address: 198.18.10.2}
links:
  - {id: kab-nunukan--dc, from: kab-nunukan, to: pusat-dc, network: vpn}
  - {id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: m2m, bridge: false}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        parse_topology(textwrap.dedent(text), "lab.yml")
    assert "lab.yml" in str(caught.value)
    return caught.value.errors


def test_shipped_lab_mirrors_nunukan() -> None:
    topo = load_topology(SHIPPED_LAB)
    ids = {s.id for s in topo.sites}
    assert {"pusat-dc", "pusat-drc", "kab-nunukan", "kec-krayan"} <= ids
    assert all(s.address in ipaddress.IPv4Network("198.18.0.0/15") for s in topo.sites)
    for site in topo.sites:
        if site.kind in ("pusat", "drc", "kabupaten"):
            assert site.services and site.services.http and site.services.https
        if site.kind == "kecamatan":
            assert {k.peer(site.id).site for k in topo.links_of(site.id)} == {"kab-nunukan"}
    assert topo.is_transit("kab-nunukan") and not topo.is_transit("kec-sebuku")
    # The same ids as the real Nunukan config, so what works on the lab reads the same there.
    real = load_config(CONFIG_DIR / "nunukan.yml")
    assert ids <= {s.id for s in real.sites}
    assert {k.id for k in topo.links} <= {k.id for k in real.links}


def test_lab_config_probes_what_the_lab_has() -> None:
    """config/lab-nunukan.yml: every link is a lab link, every target a lab address/service."""
    topo = load_topology(SHIPPED_LAB)
    config = load_config(CONFIG_DIR / "lab-nunukan.yml")
    assert {k.id for k in config.links} == {k.id for k in topo.links}
    for link in config.links:
        lab_link = topo.link(link.id)
        assert (link.from_site, link.to_site) == (lab_link.from_end.site, lab_link.to_end.site)
        far = topo.site(link.to_site if link.to_site.startswith("pusat") else link.from_site)
        for probe in link.probes:
            if isinstance(probe, IcmpProbe):
                # The far site's own address, or its end of exactly this link.
                assert probe.target in (str(far.address), str(lab_link.end(far.id).interface.ip))
                if probe.source:
                    assert probe.source == str(topo.site("kab-nunukan").address)
                continue
            if isinstance(probe, TcpProbe):
                endpoint: tuple[str | None, int] = (probe.host, probe.port)
            else:
                url = urllib.parse.urlsplit(probe.url)
                endpoint = (url.hostname, url.port or {"http": 80, "https": 443}[url.scheme])
            assert far.services and endpoint[0] == str(far.address)
            assert endpoint[1] in far.services.ports


def test_addresses_come_from_the_pool_in_order() -> None:
    topo = parse_topology(SMALL)
    dc, krayan = topo.links
    assert str(dc.from_end.interface) == "198.19.0.1/30"
    assert str(dc.to_end.interface) == "198.19.0.2/30"
    assert str(krayan.from_end.interface) == "198.19.0.5/30"
    # Each end's device is named after the site at the other end.
    assert (dc.from_end.device, dc.to_end.device) == ("pusat-dc", "kab-nunukan")
    assert dc.bridge and not krayan.bridge


def test_kecamatan_reaches_pusat_through_the_hub() -> None:
    topo = parse_topology(SMALL)
    routes = {str(r.destination): r for r in topo.routes("kec-krayan")}
    to_dc = routes["198.18.1.1/32"]
    assert (str(to_dc.via), to_dc.device) == ("198.19.0.6", "kab-nunukan")
    assert "198.19.0.0/30" in routes  # the hub's uplink subnet, for traceroute answers
    back = {str(r.destination): r for r in topo.routes("pusat-dc")}["198.18.10.2/32"]
    assert str(back.via) == "198.19.0.1"
    # Directly attached subnets are not routed.
    assert "198.19.0.4/30" not in routes


def test_parallel_links_get_distinct_device_names() -> None:
    topo = parse_topology(
        SMALL
        + """
  - {id: kec-krayan--kab-starlink, from: kec-krayan, to: kab-nunukan, network: starlink}
"""
    )
    devices = [k.end("kec-krayan").device for k in topo.links_of("kec-krayan")]
    assert devices == ["kab-nunukan", "kab-nunukan.2"]
    long_name = parse_topology(SMALL.replace("kec-krayan", "kec-nunukan-selatan"))
    assert long_name.link("kec-nunukan-selatan--kab").to_end.device == "kec-nunukan-sel"


def test_routes_prefer_the_cheaper_link_and_go_around_down_ones() -> None:
    topo = load_topology(SHIPPED_LAB)
    assert topo.link("kec-krayan--kab--starlink").cost == 10

    def via(site: str, dest: str, down: tuple[str, ...] = ()) -> str | None:
        found = [r for r in topo.routes(site, down) if str(r.destination) == dest]
        return f"{found[0].via} {found[0].device}" if found else None

    # Krayan reaches pusat over its VPN; with the VPN down, over Starlink; the hub alike.
    assert via("kec-krayan", "198.18.1.1/32") == "198.19.0.18 kab-nunukan"
    assert via("kec-krayan", "198.18.1.1/32", ("kec-krayan--kab",)) == "198.18.40.10 kab-nunukan.2"
    assert via("kab-nunukan", "198.18.30.8/32", ("kec-krayan--kab",)) == "198.18.40.9 kec-krayan.2"
    # The down link's subnet is routed nowhere; a site cut off gets no route at all.
    assert via("pusat-dc", "198.19.0.16/30", ("kec-krayan--kab",)) is None
    assert via("pusat-dc", "198.18.10.13/32", ("kec-lumbis--kab",)) is None
    # A cheaper backup wins over the file order.
    vpn = "{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: vpn"
    cheap = parse_topology(topo.text.replace("cost: 10", "cost: 1").replace(vpn, vpn + ", cost: 5"))
    assert [
        r.device for r in cheap.routes("kec-krayan") if str(r.destination) == "198.18.1.1/32"
    ] == ["kab-nunukan.2"]
    with pytest.raises(TopologyError, match=r"links\[0\].cost: must be a whole number 1-65535"):
        parse_topology(SMALL.replace("network: vpn", "network: vpn, cost: 0", 1))


def test_address_outside_lab_range() -> None:
    errors = errors_of(SMALL.replace("198.18.1.1, services", "10.0.0.1, services"))
    assert errors == ["sites[0].address: 10.0.0.1 is outside the lab range 198.18.0.0/15"]


def test_every_error_is_listed_with_its_path() -> None:
    errors = errors_of("""
        link_subnets: 10.0.0.0/16
        colour: blue
        sites:
          - {id: pusat-dc, address: 198.18.1.1, services: {http: 70000, ftp: 21}}
          - {id: pusat-dc, address: 198.18.1.2}
          - {id: Kab_Nunukan, address: 198.18.0.1}
          - {id: kec-krayan, address: not-an-ip}
          - {id: kec-lumbis, address: 198.18.10.3, extra: 1}
        links:
          - {id: a--b, from: pusat-dc, to: kab-nowhere}
          - {id: loop, from: pusat-dc, to: pusat-dc}
          - {id: pusat-dc, from: pusat-dc, to: kec-lumbis}
          - {id: tiny, from: pusat-dc, to: kec-lumbis, subnet: 198.19.0.0/31}
          - {id: yes, from: pusat-dc, to: kec-lumbis, bridge: maybe}
          - {from: pusat-dc}
    """)
    assert errors == [
        "lab file.colour: unknown key",
        "link_subnets: 10.0.0.0/16 is outside the lab range 198.18.0.0/15",
        "sites[0].services.ftp: unknown key",
        "sites[0].services.http: 70000 is not a TCP port (1-65535)",
        "sites[1].id: duplicate site id 'pusat-dc'",
        "sites[2].id: 'Kab_Nunukan' must be lowercase letters, digits and '-'",
        "sites[3].address: 'not-an-ip' is not an IPv4 address",
        "sites[4].extra: unknown key",
        "links[0].to: unknown site 'kab-nowhere'",
        "links[1]: a link joins two different sites, both ends are 'pusat-dc'",
        "links[2].id: duplicate id 'pusat-dc' (links and sites share ids)",
        "links[3].subnet: 198.19.0.0/31 is too small, use a /30 or larger",
        "links[4].bridge: must be true or false, got 'maybe'",
        "links[5].id: required",
        "links[5].to: required",
    ]


def test_overlapping_subnets_and_shared_addresses() -> None:
    errors = errors_of(
        SMALL.replace("198.18.0.1", "198.18.1.1")
        + """
  - {id: extra, from: pusat-dc, to: kec-krayan, subnet: 198.19.0.0/29}
"""
    )
    assert "sites: 'kab-nunukan' and 'pusat-dc' share 198.18.1.1" in errors
    assert any(
        "subnet 198.19.0.0/29 of link 'extra' overlaps link 'kab-nunukan--dc'" in e for e in errors
    )


def test_not_yaml_and_not_a_mapping() -> None:
    assert errors_of("sites: [")[0].startswith("not valid YAML")
    assert errors_of("- 1") == ["lab file: must be a mapping, got list"]


def test_unknown_site_and_link_lookups_name_the_choices() -> None:
    topo = parse_topology(SMALL)
    with pytest.raises(LabError, match="unknown link 'nope'; links: kab-nunukan--dc, kec-kra"):
        topo.link("nope")
    with pytest.raises(LabError, match="cannot read lab file"):
        load_topology("/nonexistent/lab.yml")
