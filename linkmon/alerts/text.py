"""What on-call staff read: alert summary and description, in Bahasa Indonesia or English.

Times are shown in the site's own zone with its Indonesian abbreviation (WIB, WITA, WIT), as
people at a kecamatan office read the clock; timestamps stay UTC everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

LANGUAGES = ("id", "en")

_MONTHS = {
    "id": (
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
_UNITS = {"id": ("hari", "j", "m", "dtk"), "en": ("d", "h", "m", "s")}

# What each diagnosis means, in words a NOC officer uses.
_CAUSES = {
    "id": {
        "path_down": "jalur putus (tidak ada balasan ping)",
        "icmp_lost": "sebagian target ping tidak menjawab",
        "service_refused": "jalur hidup, tetapi layanan menolak koneksi (TCP ditolak)",
        "service_blocked": "jalur hidup, tetapi layanan tidak menjawab (diblokir?)",
        "http_status": "layanan menjawab dengan status HTTP yang salah",
        "body_mismatch": "layanan menjawab dengan isi yang tidak sesuai",
        "dns": "nama host tidak dapat di-resolve (DNS)",
        "tls": "kesalahan TLS/sertifikat",
        "service_error": "kesalahan protokol pada layanan",
        "loss": "paket hilang di atas ambang",
        "rtt": "latensi di atas ambang",
        "own_uplink": "uplink linkmon sendiri terputus",
        "flapping": "link naik-turun berulang kali",
        "no_path": "tidak ada jalur ke pusat",
    },
    "en": {
        "path_down": "path down (no ping replies)",
        "icmp_lost": "some ping targets do not answer",
        "service_refused": "path up, but the service refuses connections (TCP refused)",
        "service_blocked": "path up, but the service does not answer (blocked?)",
        "http_status": "the service answers with a wrong HTTP status",
        "body_mismatch": "the service answers with unexpected content",
        "dns": "host name does not resolve (DNS)",
        "tls": "TLS/certificate failure",
        "service_error": "protocol error at the service",
        "loss": "packet loss above threshold",
        "rtt": "latency above threshold",
        "own_uplink": "linkmon's own uplink is down",
        "flapping": "link going up and down repeatedly",
        "no_path": "no path to pusat",
    },
}

_TEXT = {
    "id": {
        "down.summary": "Link {link} ({office} – {peer}, {network}) putus sejak {clock}",
        "down.description": "{office} tidak terhubung ke {peer} melalui {network} sejak {date}. "
        "Penyebab: {cause}.{detail}",
        "up.summary": "Link {link} ({office} – {peer}) pulih pukul {clock}",
        "up.description": "Link {link} pulih pada {date} setelah putus {duration} (sejak {since}).",
        "flap.summary": "Link {link} ({office} – {peer}) tidak stabil sejak {clock}",
        "flap.description": "Link {link} berubah status {changes} kali dalam {window}. "
        "Peringatan per perubahan ditahan sampai link stabil.",
        "calm.summary": "Link {link} ({office} – {peer}) stabil kembali pukul {clock}",
        "calm.description": "Link {link} stabil kembali pada {date} setelah tidak stabil "
        "selama {duration}.",
        "svc.summary": "{office} tidak dapat melayani secara online sejak {clock}",
        "svc.description": "Tidak ada jalur dari {office} ke pusat (DC maupun DRC) sejak {date}. "
        "Link putus: {links}.",
        "svc_up.summary": "{office} dapat melayani online lagi pukul {clock}",
        "svc_up.description": "Layanan online {office} pulih pada {date} setelah {duration}.",
        "region.summary": "Gangguan wilayah {kabupaten}: {down} dari {total} link kecamatan "
        "putus sejak {clock}",
        "region.description": "{down} dari {total} link kecamatan di {kabupaten} putus bersamaan "
        "sejak {date}. Penyebab utama: {cause}. Kecamatan: {offices}.",
        "region_up.summary": "Gangguan wilayah {kabupaten} selesai pukul {clock}",
        "region_up.description": "Semua link kecamatan di {kabupaten} pulih pada {date} "
        "setelah {duration}.",
        "removed.link": "Link {subject} dihapus dari konfigurasi pada {date}.",
        "removed.office": "Kantor {subject} dihapus dari konfigurasi pada {date}.",
        "removed.region": "Gangguan wilayah {subject} tidak dipantau lagi: link kecamatannya "
        "dihapus dari konfigurasi pada {date}.",
    },
    "en": {
        "down.summary": "Link {link} ({office} – {peer}, {network}) down since {clock}",
        "down.description": "{office} has no connection to {peer} over {network} since {date}. "
        "Cause: {cause}.{detail}",
        "up.summary": "Link {link} ({office} – {peer}) restored at {clock}",
        "up.description": "Link {link} restored on {date} after {duration} down (since {since}).",
        "flap.summary": "Link {link} ({office} – {peer}) flapping since {clock}",
        "flap.description": "Link {link} changed state {changes} times within {window}. "
        "Per-change alerts are held until the link is stable.",
        "calm.summary": "Link {link} ({office} – {peer}) stable again at {clock}",
        "calm.description": "Link {link} stable again on {date} after flapping for {duration}.",
        "svc.summary": "{office} cannot serve online since {clock}",
        "svc.description": "No path from {office} to pusat (neither DC nor DRC) since {date}. "
        "Links down: {links}.",
        "svc_up.summary": "{office} can serve online again at {clock}",
        "svc_up.description": "Online service at {office} restored on {date} after {duration}.",
        "region.summary": "Regional incident {kabupaten}: {down} of {total} kecamatan links "
        "down since {clock}",
        "region.description": "{down} of {total} kecamatan links in {kabupaten} went down "
        "together since {date}. Main cause: {cause}. Kecamatan: {offices}.",
        "region_up.summary": "Regional incident {kabupaten} over at {clock}",
        "region_up.description": "All kecamatan links in {kabupaten} restored on {date} "
        "after {duration}.",
        "removed.link": "Link {subject} was removed from the configuration on {date}.",
        "removed.office": "Office {subject} was removed from the configuration on {date}.",
        "removed.region": "Regional incident {subject} no longer watched: its kecamatan links "
        "were removed from the configuration on {date}.",
    },
}


@dataclass(frozen=True, slots=True)
class Place:
    """A site as people know it: its name and the zone its clocks show."""

    name: str
    timezone: str


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def month_name(month: int, language: str) -> str:
    """``Maret``: a month (1-12) as ``language`` writes it."""
    return _MONTHS[language][month - 1]


def zone_abbr(ts: float, timezone: str) -> str:
    """``WITA``: the name the site's zone goes by at ``ts``."""
    return datetime.fromtimestamp(ts, _zone(timezone)).tzname() or timezone


def clock(ts: float, timezone: str) -> str:
    """``08:12 WITA``: the time of day in the site's zone with its abbreviation."""
    local = datetime.fromtimestamp(ts, _zone(timezone))
    return f"{local:%H:%M} {local.tzname()}"


def date(ts: float, timezone: str, language: str) -> str:
    """``1 Maret 2025 08:12 WITA``."""
    local = datetime.fromtimestamp(ts, _zone(timezone))
    month = _MONTHS[language][local.month - 1]
    return f"{local.day} {month} {local.year} {local:%H:%M} {local.tzname()}"


def duration(seconds: float, language: str) -> str:
    """``3 j 5 m`` / ``3 h 5 m``: the two largest units, as the status page shows them."""
    day, hour, minute, second = _UNITS[language]
    total = max(0, int(round(seconds)))
    parts = [
        (total // 86400, day),
        (total // 3600 % 24, hour),
        (total // 60 % 60, minute),
        (total % 60, second),
    ]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) if shown else f"0 {second}"


def cause_text(cause: str, language: str) -> str:
    """Words for a diagnosis; an unlisted cause (``upstream:x``) is shown as it is."""
    return _CAUSES[language].get(cause, cause)


def _render(language: str, kind: str, **values: str) -> dict[str, str]:
    table = _TEXT[language]
    return {
        "summary": table[f"{kind}.summary"].format(**values),
        "description": table[f"{kind}.description"].format(**values),
    }


def link_down(
    language: str,
    *,
    link: str,
    office: Place,
    peer: str,
    network: str,
    cause: str,
    detail: str,
    since: float,
) -> dict[str, str]:
    tz = office.timezone
    return _render(
        language,
        "down",
        link=link,
        office=office.name,
        peer=peer,
        network=network,
        clock=clock(since, tz),
        date=date(since, tz, language),
        cause=cause_text(cause, language),
        detail=f" ({detail})" if detail else "",
    )


def link_restored(
    language: str, *, link: str, office: Place, peer: str, since: float, at: float
) -> dict[str, str]:
    tz = office.timezone
    return _render(
        language,
        "up",
        link=link,
        office=office.name,
        peer=peer,
        clock=clock(at, tz),
        date=date(at, tz, language),
        since=clock(since, tz),
        duration=duration(at - since, language),
    )


def removed(
    language: str,
    *,
    about: Literal["link", "office", "region"],
    subject: str,
    timezone: str,
    at: float,
) -> dict[str, str]:
    """The resolve of an alert whose subject a reload took out of the configuration: only its
    id is left to name it, and the agent's own zone to date it."""
    text = _TEXT[language][f"removed.{about}"].format(
        subject=subject, date=date(at, timezone, language)
    )
    return {"summary": text, "description": text}


def link_flapping(
    language: str, *, link: str, office: Place, peer: str, changes: int, window: float, since: float
) -> dict[str, str]:
    tz = office.timezone
    return _render(
        language,
        "flap",
        link=link,
        office=office.name,
        peer=peer,
        clock=clock(since, tz),
        changes=str(changes),
        window=duration(window, language),
    )


def link_calm(
    language: str, *, link: str, office: Place, peer: str, since: float, at: float
) -> dict[str, str]:
    tz = office.timezone
    return _render(
        language,
        "calm",
        link=link,
        office=office.name,
        peer=peer,
        clock=clock(at, tz),
        date=date(at, tz, language),
        duration=duration(at - since, language),
    )


def service_unavailable(
    language: str, *, office: Place, links: Sequence[str], since: float
) -> dict[str, str]:
    tz = office.timezone
    return _render(
        language,
        "svc",
        office=office.name,
        clock=clock(since, tz),
        date=date(since, tz, language),
        links=", ".join(links),
    )


def service_restored(language: str, *, office: Place, since: float, at: float) -> dict[str, str]:
    tz = office.timezone
    return _render(
        language,
        "svc_up",
        office=office.name,
        clock=clock(at, tz),
        date=date(at, tz, language),
        duration=duration(at - since, language),
    )


def regional_incident(
    language: str,
    *,
    kabupaten: Place,
    down: int,
    total: int,
    offices: Sequence[str],
    cause: str,
    since: float,
) -> dict[str, str]:
    tz = kabupaten.timezone
    return _render(
        language,
        "region",
        kabupaten=kabupaten.name,
        down=str(down),
        total=str(total),
        clock=clock(since, tz),
        date=date(since, tz, language),
        cause=cause_text(cause, language),
        offices=", ".join(offices),
    )


def regional_resolved(
    language: str, *, kabupaten: Place, since: float, at: float
) -> dict[str, str]:
    tz = kabupaten.timezone
    return _render(
        language,
        "region_up",
        kabupaten=kabupaten.name,
        clock=clock(at, tz),
        date=date(at, tz, language),
        duration=duration(at - since, language),
    )
