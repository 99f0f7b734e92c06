"""linkmon/config/crosschecks.py: unique ids, references to sites and links, the site
hierarchy, dependency cycles, the probes of a link, receivers and maintenance windows; a
reference to an item that is broken itself is not reported a second time."""

from __future__ import annotations

import pytest

from linkmon.config import ConfigError, parse_config
from tests.linkmon.config.cases import Table, assert_refused, each_file

INVALID: Table = [
    (
        "invalid-depends-cycle",
        [
            "links[0].depends_on: dependency cycle: kec-krayan--kab -> kab-nunukan--dc -> "
            "kab-nunukan--drc -> kec-krayan--kab",
        ],
    ),
    ("invalid-depends-self", ["links[0].depends_on[0]: a link cannot depend on itself"]),
    ("invalid-depends-twice", ["links[1].depends_on[1]: 'kab-nunukan--drc' is listed twice"]),
    ("invalid-depends-unknown", ["links[0].depends_on[0]: unknown link 'kab-nunukan--drc'"]),
    (
        "invalid-link-duplicate",
        [
            "links[1].id: duplicate link id 'kab-nunukan--dc' (also links[0])",
        ],
    ),
    ("invalid-link-from-unknown", ["links[0].from: unknown site 'kab-nunukn'"]),
    ("invalid-link-no-probes", ["links[0].probes: a link needs at least one probe"]),
    ("invalid-link-same-ends", ["links[0].to: must not be the same site as from ('kab-nunukan')"]),
    ("invalid-link-to-unknown", ["links[0].to: unknown site 'pusat-drc'"]),
    ("invalid-maintenance-covers-nothing", ["maintenance[0]: covers nothing: list links or sites"]),
    ("invalid-maintenance-empty-weekly", ["maintenance[0].end: must differ from start 01:00"]),
    (
        "invalid-maintenance-oneoff-time",
        [
            'maintenance[0].end: a one-off window needs "YYYY-MM-DD HH:MM" (or add weekdays for a '
            "weekly one)",
        ],
    ),
    ("invalid-maintenance-order", ["maintenance[0].end: must be after start 2026-12-01 02:00"]),
    (
        "invalid-maintenance-unknown-link",
        [
            "maintenance[0].links[0]: unknown link 'kab-nunukan--drc'",
        ],
    ),
    ("invalid-maintenance-unknown-site", ["maintenance[0].sites[0]: unknown site 'kec-sebatik'"]),
    (
        "invalid-maintenance-weekly-date",
        [
            'maintenance[0].start: a weekly window takes a time "HH:MM", not a date',
        ],
    ),
    ("invalid-probe-duplicate", ["links[0].probes[1]: same probe as probes[0] (icmp 198.18.1.1)"]),
    (
        "invalid-receiver-duplicate",
        [
            "alerting.receivers[1].name: duplicate receiver name 'oncall' (also "
            "alerting.receivers[0])",
        ],
    ),
    ("invalid-receiver-no-url", ["alerting.receivers[0].url: required"]),
    ("invalid-receiver-url-and-urls", ["alerting.receivers[0]: give url or urls, not both"]),
    (
        "invalid-receiver-webhook-urls",
        [
            "alerting.receivers[0].urls: a webhook receiver takes one url",
        ],
    ),
    ("invalid-site-duplicate", ["sites[3].id: duplicate site id 'kec-krayan' (also sites[2])"]),
    (
        "invalid-site-parent-kind",
        [
            "sites[2].parent: a kecamatan belongs to a kabupaten or kota, but 'pusat-dc' is a "
            "pusat",
        ],
    ),
    ("invalid-site-parent-pusat", ["sites[0].parent: a pusat site has no parent"]),
    ("invalid-site-parent-self", ["sites[1].parent: a site cannot be its own parent"]),
    ("invalid-site-parent-unknown", ["sites[2].parent: unknown site 'kab-nunukn'"]),
    (
        "invalid-source-family",
        [
            "links[0].probes[0].source: 198.18.0.1 is IPv4 but the target is IPv6",
        ],
    ),
    (
        "invalid-maintenance-site-without-links",
        [
            "maintenance[0].sites[1]: covers nothing: no link runs from or to 'kec-sebatik'",
        ],
    ),
]


@each_file(INVALID)
def test_inconsistent_items_fail_with_exact_errors(
    name: str, expected: list[str], secrets_env: None
) -> None:
    assert_refused(name, expected)


def test_reference_to_a_broken_item_is_not_reported_twice() -> None:
    """sites[1] has a bad kind; the link that names it must not add "unknown site"."""
    text = """
sites: [{id: a, kind: kabupaten}, {id: b, kind: desa}, {id: c, kind: pusat}]
links:
  - {id: l1, from: a, to: b, network: vpn, probes: [{kind: icmp, target: 10.0.0.1}]}
  - {id: l2, from: a, to: c, network: vpn, depends_on: [l3],
     probes: [{kind: icmp, target: 10.0.0.2}]}
  - {id: l3, from: a, to: c, network: vpn, probes: [{kind: icmp, target: 10.0.0.3, count: -1}]}
  - {id: l2, from: a, to: zz, network: vpn, probes: [{kind: icmp, target: 10.0.0.4}]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [
        "sites[1].kind: must be 'kecamatan', 'kabupaten', 'kota', 'provinsi', 'pusat' or 'drc', "
        "got 'desa'",
        "links[2].probes[0].count: must be at least 1",
        "links[3].id: duplicate link id 'l2' (also links[1])",
        "links[3].to: unknown site 'zz'",
    ]


def test_a_window_on_a_site_only_broken_links_run_to_is_not_reported() -> None:
    """The link of kec-a has an error of its own; once fixed, the window covers it."""
    text = """
sites: [{id: kab, kind: kabupaten}, {id: kec-a, kind: kecamatan, parent: kab}]
links:
  - {id: l1, from: kec-a, to: kab, network: m2m, probes: [{kind: icmp, target: 10.0.0.300}]}
maintenance:
  - {sites: [kec-a], start: "2026-11-30 22:00", end: "2026-12-01 02:00"}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [
        "links[0].probes[0].target: must be an IPv4 or IPv6 address, got '10.0.0.300'"
    ]
