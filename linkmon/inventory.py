"""``linkmon inventory``: the spreadsheet of offices becomes one checked config per agent.

Rolling out to hundreds of kabupaten, the list of kecamatan, their networks and addresses
lives in a spreadsheet, not in YAML. This reads its CSV export (one row per kecamatan:
Kemendagri code, kabupaten, kecamatan, network, address, optionally a backup address and its
network), groups the rows by kabupaten (one agent at each kabupaten/kota office) and merges
them into a template that holds what every agent shares. Nothing is written unless every row
and every generated config is good: every problem is reported at once, by line and column of
the CSV, and each config passes the same validation as ``linkmon check-config``. Files are
then written one by one through a temporary file and a rename, so none is ever half written.

Kemendagri region codes: ``PP.KK.CC`` for a kecamatan, where ``PP.KK`` is its kabupaten
(``KK`` 01-69) or kota (71-99) and ``PP`` its province (65 Kalimantan Utara: Nunukan is
65.03). The province gives the agent's time zone.
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
import ipaddress
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, parse_config

REQUIRED = ("kode", "kabupaten", "kecamatan", "network", "address")
OPTIONAL = ("backup_address", "backup_network")
# The networks a link may be on (the config's `network`); the backup's default is `internet`.
NETWORKS = ("m2m", "jip", "vpn", "internet", "starlink", "other")
BACKUP_NETWORK = "internet"
# Excel writes `;` where the decimal separator is a comma (the Indonesian locale), `,`
# elsewhere; a tab from "Text (tab delimited)".
SEPARATORS = (",", ";", "\t")

_WIB, _WITA, _WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"
# Province code → the time zone its offices keep (Kemendagri codes; WIB, WITA, WIT).
PROVINCE_ZONES = {
    **dict.fromkeys(("11", "12", "13", "14", "15", "16", "17", "18", "19", "21"), _WIB),
    **dict.fromkeys(("31", "32", "33", "34", "35", "36"), _WIB),
    "51": _WITA,
    "52": _WITA,
    "53": _WITA,
    "61": "Asia/Pontianak",  # Kalimantan Barat: WIB
    "62": "Asia/Pontianak",  # Kalimantan Tengah: WIB
    "63": _WITA,
    "64": _WITA,
    "65": _WITA,
    **dict.fromkeys(("71", "72", "73", "74", "75", "76"), _WITA),
    **dict.fromkeys(("81", "82", "91", "92", "93", "94", "95", "96"), _WIT),
}

_CODE = re.compile(r"(\d{2})\.(\d{2})\.(\d{2})")
_ID_CHARS = 64
_SECTIONS = ("agent", "server", "storage", "defaults", "sites", "links", "alerting", "maintenance")


class InventoryError(Exception):
    """The inventory cannot be turned into configs; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}, nothing written"
        super().__init__("\n".join([*errors, count]))


@dataclass(frozen=True)
class Office:
    """One kecamatan office of the spreadsheet, checked on its own."""

    line: int
    code: str
    kabupaten_code: str
    kabupaten: str  # the name without "Kabupaten"/"Kota"
    kecamatan: str  # the name without "Kecamatan"
    site: str
    network: str
    address: str
    backup_address: str
    backup_network: str

    @property
    def is_kota(self) -> bool:
        return int(self.kabupaten_code[3:]) >= 71

    @property
    def agent(self) -> str:
        return f"{'kota' if self.is_kota else 'kab'}-{slug(self.kabupaten)}"


@dataclass(frozen=True)
class AgentConfig:
    """One agent's generated config, already validated."""

    agent: str
    filename: str
    text: str
    offices: int


def slug(name: str) -> str:
    """An id from a name: ASCII, lower case, words joined by ``-`` (``Sei Menggaris`` →
    ``sei-menggaris``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


# -- reading the spreadsheet ---------------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InventoryError(
            [f'{source}:1: UTF-16 text ("Unicode text"): save the sheet as "CSV UTF-8"']
        )
    try:
        return data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        offset = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InventoryError(
            [
                f"{source}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}, character {offset} "
                'of the line): save the sheet as "CSV UTF-8"'
            ]
        ) from None


def _column_name(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _separator(header: str) -> str:
    """The separator that splits the header line into the most known column names."""
    known = set(REQUIRED) | set(OPTIONAL)

    def score(sep: str) -> int:
        fields = next(csv.reader([header], delimiter=sep), [])
        return sum(_column_name(f) in known for f in fields)

    return max(SEPARATORS, key=score)


class _Sheet:
    """The rows of one CSV file, each problem noted with its line and column."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.problems: list[tuple[int, str]] = []
        lines = text.splitlines()
        first = next((n for n, line in enumerate(lines) if line.strip()), None)
        if first is None:
            raise InventoryError(
                [f"{source}: empty: expected a header line and one row per office"]
            )
        self.separator = _separator(lines[first])
        self._reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.separator)
        self.columns: list[str] = []

    def error(self, line: int, message: str, column: int | None = None) -> None:
        where = f"{self.source}:{line}: "
        if column is not None:
            where += f"column {column + 1} ({self.columns[column]}): "
        self.problems.append((line, where + message))

    @property
    def errors(self) -> list[str]:
        """Every problem, in the order of the file's lines."""
        return [text for _, text in sorted(self.problems, key=lambda p: p[0])]

    def header(self) -> bool:
        for fields in self._reader:
            if any(f.strip() for f in fields):
                break
        else:  # pragma: no cover - _Sheet refuses a file without a non-blank line
            return False
        line = self._reader.line_num
        self.columns = [_column_name(f) for f in fields]
        known = (*REQUIRED, *OPTIONAL)
        for index, name in enumerate(self.columns):
            if name not in known:
                self.error(line, f"unknown column {name!r} (known: {', '.join(known)})", index)
            elif self.columns.index(name) != index:
                self.error(line, f"column {name!r} given twice", index)
        missing = [name for name in REQUIRED if name not in self.columns]
        if missing:
            shown = ", ".join(repr(m) for m in missing)
            self.error(line, f"missing column{'s' if len(missing) > 1 else ''} {shown}")
        return not self.errors

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        while True:
            line = self._reader.line_num + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.error(line, f"not CSV: {exc}")
                return
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(self.columns):
                self.error(
                    line,
                    f"{len(fields)} fields, the header has {len(self.columns)} "
                    f"(a {self.separator!r} inside a name needs quotes)",
                )
                continue
            yield (
                line,
                {
                    name: (fields[i].strip() if i < len(fields) else "")
                    for i, name in enumerate(self.columns)
                },
            )


_KAB_PREFIX = re.compile(r"(kabupaten|kab\.?)\s+", re.IGNORECASE)
_KOTA_PREFIX = re.compile(r"kota\s+", re.IGNORECASE)
_KEC_PREFIX = re.compile(r"(kecamatan|kec\.?)\s+", re.IGNORECASE)


def _office(sheet: _Sheet, line: int, row: dict[str, str]) -> Office | None:
    """One row checked on its own; ``None`` (with its errors noted) if it is bad."""
    bad = len(sheet.problems)
    col = sheet.columns.index

    def need(name: str) -> str:
        value = row.get(name, "")
        if not value:
            sheet.error(line, "is empty", col(name))
        return value

    code = need("kode")
    match = _CODE.fullmatch(code)
    if code and not match:
        sheet.error(
            line, f"{code!r} is not a kecamatan code: expected PP.KK.CC, e.g. 65.03.01", col("kode")
        )
    elif match:
        province, kab, kec = match.groups()
        if province not in PROVINCE_ZONES:
            sheet.error(line, f"{code!r}: {province} is not a province code", col("kode"))
        if kab in ("00", "70") or kec == "00":
            sheet.error(
                line,
                f"{code!r}: kabupaten are numbered 01-69, kota 71-99, kecamatan from 01",
                col("kode"),
            )
    kabupaten_text = need("kabupaten")
    kabupaten = _KOTA_PREFIX.sub("", _KAB_PREFIX.sub("", kabupaten_text, count=1), count=1)
    if match and kabupaten_text:
        is_kota = int(match[2]) >= 71
        if _KOTA_PREFIX.match(kabupaten_text) and not is_kota:
            sheet.error(
                line,
                f"{kabupaten_text!r} is a kota but {code} is a kabupaten code (01-69)",
                col("kabupaten"),
            )
        elif _KAB_PREFIX.match(kabupaten_text) and is_kota:
            sheet.error(
                line,
                f"{kabupaten_text!r} is a kabupaten but {code} is a kota code (71-99)",
                col("kabupaten"),
            )
    kecamatan = _KEC_PREFIX.sub("", need("kecamatan"), count=1)
    site = f"kec-{slug(kecamatan)}"
    if kecamatan and (site == "kec-" or len(site) > _ID_CHARS):
        sheet.error(line, f"{kecamatan!r} gives no usable site id ({site!r})", col("kecamatan"))
    network = need("network").lower()
    if network and network not in NETWORKS:
        sheet.error(
            line, f"unknown network {network!r} (one of {', '.join(NETWORKS)})", col("network")
        )
    address = _address(sheet, line, "address", need("address"))
    backup = _address(sheet, line, "backup_address", row.get("backup_address", ""))
    backup_network = row.get("backup_network", "").lower()
    if backup_network and not backup:
        sheet.error(line, "a backup network without a backup address", col("backup_network"))
    elif backup_network and backup_network not in NETWORKS:
        sheet.error(
            line,
            f"unknown network {backup_network!r} (one of {', '.join(NETWORKS)})",
            col("backup_network"),
        )
    if backup and backup == address:
        sheet.error(
            line, f"the same address as the primary link ({address})", col("backup_address")
        )
    if len(sheet.problems) > bad or not match:
        return None
    return Office(
        line=line,
        code=code,
        kabupaten_code=code[:5],
        kabupaten=kabupaten,
        kecamatan=kecamatan,
        site=site,
        network=network,
        address=address,
        backup_address=backup,
        backup_network=backup_network or (BACKUP_NETWORK if backup else ""),
    )


def _address(sheet: _Sheet, line: int, column: str, value: str) -> str:
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        sheet.error(
            line,
            f"{value!r} is not an IP address (the office router's, e.g. 198.18.30.8)",
            sheet.columns.index(column),
        )
        return ""


def _cross_check(sheet: _Sheet, offices: list[Office]) -> None:
    """What no row shows alone: a code under the wrong kabupaten, a kecamatan twice, an
    address given to two offices of one agent."""
    col = sheet.columns.index
    kabupaten_by_code: dict[str, Office] = {}
    code_by_kabupaten: dict[str, Office] = {}
    seen: dict[tuple[str, ...], Office] = {}
    for office in offices:
        first = kabupaten_by_code.setdefault(office.kabupaten_code, office)
        name = office.kabupaten.casefold()
        if first.kabupaten.casefold() != name:
            sheet.error(
                office.line,
                f"{office.code} is under {office.kabupaten_code} = {first.kabupaten} "
                f"(line {first.line}), not {office.kabupaten}",
                col("kode"),
            )
            continue
        owner = code_by_kabupaten.setdefault(name, office)
        if owner.kabupaten_code != office.kabupaten_code:
            sheet.error(
                office.line,
                f"{office.code} is not under {office.kabupaten}, which is "
                f"{owner.kabupaten_code} (line {owner.line})",
                col("kode"),
            )
            continue
        checks = [
            ("kode", "code", office.code, f"code {office.code} already on line {{}}"),
            (
                "kecamatan",
                "name",
                office.kecamatan.casefold(),
                "duplicate kecamatan: first on line {}",
            ),
            ("kecamatan", "site", office.site, f"site id {office.site} already made on line {{}}"),
            (
                "address",
                "address",
                office.address,
                f"address {office.address} already on line {{}}",
            ),
            ("backup_address", "address", office.backup_address, "address already on line {}"),
        ]
        for column, kind, value, message in checks:
            key = (kind, value) if kind == "code" else (kind, office.agent, value)
            earlier = seen.setdefault(key, office) if value else office
            if earlier is not office:
                sheet.error(office.line, message.format(earlier.line), col(column))
                break


def read_offices(data: bytes, source: str) -> list[Office]:
    """Every office of a CSV export; :class:`InventoryError` with every bad row otherwise."""
    sheet = _Sheet(_decode(data, source), source)
    if not sheet.header():
        raise InventoryError(sheet.errors)
    offices = [o for line, row in sheet.rows() if (o := _office(sheet, line, row)) is not None]
    if not offices and not sheet.problems:
        raise InventoryError([f"{source}: no office: one row per kecamatan after the header"])
    _cross_check(sheet, offices)
    if sheet.errors:
        raise InventoryError(sheet.errors)
    return offices


# -- the configs ---------------------------------------------------------------------------------


def load_template(path: Path | None) -> dict[str, Any]:
    """The template: a linkmon config without the per-agent parts, plus an ``inventory``
    section (``uplinks``, ``kecamatan_link``, ``backup_link``); none given is an empty one."""
    if path is None:
        return {}
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InventoryError([f"{source}: cannot read the template: {exc}"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InventoryError([f"{source}: the template must be a mapping of config sections"])
    errors = [
        f"{source}: {key}: not a config section (known: {', '.join((*_SECTIONS, 'inventory'))})"
        for key in document
        if key not in (*_SECTIONS, "inventory")
    ]
    section = document.get("inventory") or {}
    if not isinstance(section, dict):
        errors.append(f"{source}: inventory: must be a mapping")
        section = {}
    for key, value in section.items():
        expected = list if key == "uplinks" else dict
        if key not in ("uplinks", "kecamatan_link", "backup_link"):
            errors.append(
                f"{source}: inventory.{key}: unknown (uplinks, kecamatan_link, backup_link)"
            )
        elif not isinstance(value, expected):
            errors.append(f"{source}: inventory.{key}: must be a {expected.__name__}")
    for n, uplink in enumerate(section.get("uplinks") or []):
        if not isinstance(uplink, dict) or "to" not in uplink:
            errors.append(f"{source}: inventory.uplinks[{n}]: needs `to` (a site of the template)")
    if errors:
        raise InventoryError(errors)
    return document


def _fill(value: Any, agent: str) -> Any:
    """``{agent}`` in any string of the template becomes the agent's name."""
    if isinstance(value, str):
        return value.replace("{agent}", agent)
    if isinstance(value, list):
        return [_fill(v, agent) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, agent) for k, v in value.items()}
    return value


def _document(offices: list[Office], template: dict[str, Any]) -> dict[str, Any]:
    first = offices[0]
    agent = first.agent
    base = _fill(copy.deepcopy(template), agent)
    extra = base.pop("inventory", None) or {}
    kind, title = ("kota", "Kota") if first.is_kota else ("kabupaten", "Kabupaten")
    doc: dict[str, Any] = {
        "agent": {
            **(base.get("agent") or {}),
            "name": agent,
            "timezone": PROVINCE_ZONES[first.code[:2]],
        }
    }
    sites: list[dict[str, Any]] = [*(base.get("sites") or [])]
    sites.append({"id": agent, "kind": kind, "name": f"Disdukcapil {title} {first.kabupaten}"})
    links: list[dict[str, Any]] = [*(base.get("links") or [])]
    for uplink in extra.get("uplinks") or []:
        to = str(uplink["to"])
        default_id = f"{agent}--{to.removeprefix('pusat-')}"
        links.append({"id": default_id, "from": agent, **uplink})
    for office in offices:
        sites.append(
            {
                "id": office.site,
                "kind": "kecamatan",
                "parent": agent,
                "name": f"Kecamatan {office.kecamatan}",
            }
        )
        primary = f"{office.site}--kab"
        links.append(
            {
                "id": primary,
                "from": office.site,
                "to": agent,
                "network": office.network,
                **(extra.get("kecamatan_link") or {}),
                "probes": [{"kind": "icmp", "target": office.address}],
            }
        )
        if office.backup_address:
            # Listed right after its primary: the first link between two sites is the main
            # one, the next a backup (the office is served, degraded, while it alone is up).
            links.append(
                {
                    "id": f"{primary}--backup",
                    "from": office.site,
                    "to": agent,
                    "network": office.backup_network,
                    **(extra.get("backup_link") or {}),
                    "probes": [{"kind": "icmp", "target": office.backup_address}],
                }
            )
    for section in _SECTIONS:
        if section == "sites":
            doc["sites"] = sites
        elif section == "links":
            doc["links"] = links
        elif section in base and section != "agent":
            doc[section] = base[section]
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style for sections, one line for a mapping or list of plain values (a site, a
    probe, an icmp profile), as the hand-written example configs read."""


def _is_leaf(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return all(not isinstance(v, (dict, list)) for v in items)


_Dumper.add_representer(
    dict,
    lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=_is_leaf(v)),
)
_Dumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=_is_leaf(v))
)


def _header(offices: list[Office], source: str) -> str:
    first, lines = offices[0], sorted(o.line for o in offices)
    kind = "Kota" if first.is_kota else "Kabupaten"
    return (
        f"# linkmon agent for {kind} {first.kabupaten} ({first.kabupaten_code}): "
        f"{len(offices)} kecamatan.\n"
        f"# Generated by `linkmon inventory` from {source} (lines {lines[0]}-{lines[-1]}).\n"
        "# Change the spreadsheet or the template and generate again rather than editing this.\n"
        "# A `--backup` link is the backup path of the link listed just before it.\n\n"
    )


def build_configs(
    offices: list[Office], template: dict[str, Any], source: str, out: Path
) -> list[AgentConfig]:
    """One config per kabupaten, each validated as ``check-config`` would on ``out``."""
    by_agent: dict[str, list[Office]] = {}
    for office in offices:
        by_agent.setdefault(office.agent, []).append(office)
    configs: list[AgentConfig] = []
    errors: list[str] = []
    for agent, group in sorted(by_agent.items()):
        filename = f"{agent}.yml"
        body = yaml.dump(
            _document(group, template),
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
        text = _header(group, source) + body
        try:
            parse_config(text, str(out / filename), base_dir=out)
        except ConfigError as exc:
            errors.extend(f"{exc.source}: {message}" for message in exc.errors)
            continue
        configs.append(AgentConfig(agent, filename, text, len(group)))
    if errors:
        raise InventoryError(errors)
    return configs


def write_configs(configs: list[AgentConfig], out: Path) -> list[Path]:
    """Each file through a temporary file in ``out`` and a rename: whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for config in configs:
        path = out / config.filename
        temporary = out / f".{config.filename}.{os.getpid()}.tmp"
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(config.text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        written.append(path)
    return written


def run_inventory(csv_path: Path, out: Path, template_path: Path | None = None) -> list[Path]:
    """The whole command: read, check, generate, validate, and only then write."""
    source = csv_path.name
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        raise InventoryError([f"{csv_path}: cannot read: {exc.strerror}"]) from None
    template = load_template(template_path)
    offices = read_offices(data, source)
    return write_configs(build_configs(offices, template, source, out), out)
