"""The linkmon configuration: YAML in, one validated, fully resolved, frozen model out.

Everything is checked before the daemon starts (or reloads), and every mistake is reported at
once with its path in the YAML (``links[3].probes[0].timeout: must be less than interval 2s``):
a NOC engineer fixing a config over a thin link should not need ten round trips.

How a file becomes a :class:`Config`:

1. YAML is read with a safe loader that follows YAML 1.2 for plain scalars: ``15:00`` stays
   the string "15:00" (YAML 1.1 reads it as the number 900), ``no``/``on`` stay strings and
   ``2026-11-30 22:00:00`` is not turned into a datetime. Duplicate keys are errors, as are
   alias bombs and recursive aliases.
2. pydantic validates types and formats; unknown keys are errors (with a "did you mean").
   Items with errors are set aside so that the cross-checks can still run on the rest.
3. Defaults flow down: ``defaults`` → link → probe (interval, timeout, icmp count/spacing/size;
   down_after, up_after and degraded per link), ``agent.timezone`` and
   ``defaults.service_hours`` → site. Afterwards every value is concrete.
4. Cross-checks: unique ids, references to sites and links, dependency cycles, timeout <
   interval, ICMP echoes that fit in the timeout, maintenance windows.

Durations are strings with a unit (``500ms``, ``10s``, ``2m``, ``1h``, ``1m30s``); a bare
number is refused because ``interval: 10`` could mean seconds or milliseconds. Relative paths
(``storage.path``, ``server.web_config``, ``file:`` secrets) are relative to the config file's
directory. Receiver URLs and header values (and HTTP probe header values) may be secrets:
``${ENV_VAR}`` anywhere in the value, or ``file:/path`` for the whole value; they are
resolved at load time, and neither errors nor ``repr`` ever show the resolved value.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import pickle
import re
import socket
import stat
import subprocess
import sys
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, TypeVar, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails, core_schema

from linkmon.durations import format_duration, parse_duration
from probes import HttpSpec, IcmpSpec, TcpSpec
from probes.icmp import MAX_COUNT as ICMP_MAX_COUNT
from probes.icmp import MAX_SIZE as ICMP_MAX_SIZE
from probes.icmp import MIN_SIZE as ICMP_MIN_SIZE

__all__ = [
    "Agent",
    "Alerting",
    "Config",
    "ConfigError",
    "Defaults",
    "Degraded",
    "Flapping",
    "HttpProbe",
    "IcmpProbe",
    "IcmpSettings",
    "Link",
    "MaintenanceWindow",
    "ProbeConfig",
    "Receiver",
    "Rollup",
    "Secret",
    "Server",
    "ServiceHours",
    "Site",
    "Storage",
    "TcpProbe",
    "format_errors",
    "load_config",
    "load_config_apart",
    "parse_config",
]

log = logging.getLogger(__name__)

SiteKind: TypeAlias = Literal["kecamatan", "kabupaten", "kota", "provinsi", "pusat", "drc"]
Network: TypeAlias = Literal["m2m", "jip", "vpn", "internet", "starlink", "other"]
Weekday: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SITE_KINDS: tuple[SiteKind, ...] = get_args(SiteKind)
NETWORKS: tuple[Network, ...] = get_args(Network)
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
PROBE_KINDS = ("icmp", "tcp", "http")

PARENT_KINDS: dict[str, tuple[str, ...]] = {
    "kecamatan": ("kabupaten", "kota"),
    "kabupaten": ("provinsi",),
    "kota": ("provinsi",),
    "provinsi": (),
    "pusat": (),
    "drc": (),
}
"""Which kind of site each kind of site may belong to: the Dukcapil hierarchy."""

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_SECRET_BYTES = 64 * 1024
MAX_YAML_VALUES = 500_000
MAX_YAML_DEPTH = 64


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """The config cannot be used; ``errors`` lists every problem, each ``path: reason``."""

    def __init__(self, errors: str | Sequence[str], source: str = "<config>") -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        self.source = source
        super().__init__(format_errors(self))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str], str]]:
        return ConfigError, (self.errors, self.source)  # as load_config_apart's child sends it


def format_errors(err: ConfigError) -> str:
    """The listing ``linkmon check-config`` prints: the file, then one error per line."""
    if len(err.errors) == 1:
        return f"{err.source}: {err.errors[0]}"
    lines = [f"{err.source}: {len(err.errors)} errors"]
    lines.extend(f"  {message}" for message in err.errors)
    return "\n".join(lines)


def _show(value: object, limit: int = 60) -> str:
    """A value for an error message: quoted, escaped (no raw newlines), and kept short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(text: str, limit: int = 100) -> str:
    """A path or name for a message, unquoted but kept short."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _given(value: object) -> str:
    """The offending value for a type error: scalars as written, containers by kind."""
    if isinstance(value, str | float | int) and not isinstance(value, bool):
        return _show(value)
    return _kind_of(value)


def _kind_of(value: object) -> str:
    """What YAML gave, in words ("a number"), for "must be X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --------------------------------------------------------------------------- secrets


class Secret:
    """A credential from the config. ``str``/``repr``/serialisation show where it came from
    (``${TG_TOKEN}``, ``file:/run/secrets/am``, or a masked form), never the value itself."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source!r})"

    def __str__(self) -> str:
        return self.source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self._value, self.source) == (other._value, other.source)

    def __hash__(self) -> int:
        return hash((self._value, self.source))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context
    if isinstance(context, dict):
        base = context.get("base_dir")
        if isinstance(base, Path):
            return base
    return None


def _reveal(template: str, base_dir: Path | None) -> str:
    """The value behind ``${VAR}`` references or a ``file:`` path. Errors name the variable
    or the file, never the value."""
    if template.startswith("file:"):
        path = Path(template[len("file:") :])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        where = f"secret file {_clip(str(path))}"
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{where} is not a regular file")
            if info.st_size > MAX_SECRET_BYTES:
                raise ValueError(f"{where} is larger than {MAX_SECRET_BYTES} bytes")
            with path.open("rb") as handle:
                data = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"cannot read {where}: {exc.strerror}") from None
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{where} is not UTF-8 text") from None
        if not value:
            raise ValueError(f"{where} is empty")
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            raise ValueError(f"environment variable {name} is not set")
        if not value:
            raise ValueError(f"environment variable {name} is empty")
        return value

    result = _ENV_REF.sub(substitute, template)
    if "${" in _ENV_REF.sub("", template):
        raise ValueError("'${' must start a reference like ${TOKEN} (letters, digits, '_')")
    return result


def _is_template(text: str) -> bool:
    return text.startswith("file:") or _ENV_REF.search(text) is not None


def _secret_url(value: Any, info: ValidationInfo) -> Secret:
    """A receiver URL: may carry a token (Telegram's ``/bot<token>/``), so it is a Secret.
    A literal URL is shown as ``scheme://host:port/…``: its path may be the credential."""
    if not isinstance(value, str):
        raise ValueError(f"must be a URL string, got {_kind_of(value)}")
    url = _reveal(value, _base_dir(info))
    problem = _url_problem(url, allow_userinfo=True)
    if problem:
        raise ValueError(problem)
    if _is_template(value):
        return Secret(url, _mask_userinfo(value))
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return Secret(url, f"{parts.scheme}://{host}{rest}")


def _secret_header(value: Any, info: ValidationInfo) -> Secret:
    """A header value (``Authorization: Bearer ${TOKEN}``); a literal one is shown as ``***``."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_kind_of(value)}")
    text = _reveal(value, _base_dir(info))
    if not all(" " <= c <= "~" or c == "\t" for c in text):
        raise ValueError("must be printable ASCII, without line breaks")
    return Secret(text, _mask_userinfo(value) if _is_template(value) else "***")


def _mask_userinfo(template: str) -> str:
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", template)


# --------------------------------------------------------------------------- scalar checks

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_LOCAL_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})")
_ZONE_HINT = "use an IANA name: Asia/Jakarta (WIB), Asia/Makassar (WITA), Asia/Jayapura (WIT)"


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {_show(value)}"
        )
    return value


def _check_text(value: str) -> str:
    """Names and reasons end up in alerts, the status tree and one-line Nagios output."""
    if len(value) > 300:
        raise ValueError("must be at most 300 characters")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must not contain line breaks or control characters")
    return value


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"must be an IPv4 or IPv6 address, got {_show(value)}") from None


def _is_host(host: str) -> bool:
    """An IP address or a DNS host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None
    return True


def _split_host_port(value: str, *, min_port: int) -> tuple[str, int]:
    """``host:port`` or ``[IPv6]:port``; ``ValueError`` with the expected form otherwise."""
    form = 'must be "host:port" or "[IPv6]:port"'
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"{form}, got {_show(value)}")
        try:
            if ipaddress.ip_address(host).version != 6:
                raise ValueError
        except ValueError:
            raise ValueError(f"{_show(host)} in brackets is not an IPv6 address") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"{form}, got {_show(value)}")
        if ":" in host:
            fixed = f"[{host}]:{port_text}"
            hint = f': "{fixed}"' if len(fixed) <= 60 else ""
            raise ValueError(f"an IPv6 address needs brackets{hint}")
        if not _is_host(host):
            raise ValueError(f"{_show(host)} is not an IP address or host name")
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ValueError(f"port must be a number from {min_port} to 65535, got {_show(port_text)}")
    port = int(port_text)
    if not min_port <= port <= 65535:
        raise ValueError(f"port must be a number from {min_port} to 65535, got {port}")
    return str(ipaddress.ip_address(host)) if host.count(":") > 1 else host, port


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_tcp_target(value: str) -> str:
    host, port = _split_host_port(value, min_port=1)
    return _join_host_port(host, port)


def _check_listen(value: str) -> str:
    host, port = _split_host_port(value, min_port=0)
    return _join_host_port(host, port)


def _url_problem(url: str, *, allow_userinfo: bool) -> str | None:
    """Why ``url`` is not an http(s) URL with a host, or None. Never quotes the URL."""
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (check the host and port)"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = parts.hostname
    if not host or not _is_host(host):
        return "must name a valid host (IP address or DNS name)"
    if port == 0:
        return "port must be a number from 1 to 65535"
    if not allow_userinfo and "@" in parts.netloc:
        return "must not carry credentials (the URL is exported as a label); use headers"
    return None


def _check_probe_url(value: str) -> str:
    problem = _url_problem(value, allow_userinfo=False)
    if problem:
        raise ValueError(problem if "@" in value else f"{problem}, got {_show(value)}")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {_show(value)} ({_ZONE_HINT})") from None
    return value


def _check_interface(value: str) -> str:
    """A Linux interface name: 1-15 printable characters, no '/', ':' or space."""
    forbidden = any(c.isspace() or c in "/:" or not c.isprintable() for c in value)
    if not 0 < len(value) < 16 or forbidden or value in (".", ".."):
        raise ValueError(f"must be a network interface name (1-15 characters), got {_show(value)}")
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _check_header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"invalid header name {_show(value)}")
    return value


def _duration(value: Any) -> float:
    """A duration string to seconds; bare numbers are refused (seconds or milliseconds?)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f'must be a duration such as "10s" or "500ms", got {_kind_of(value)}')
    if not isinstance(value, str):
        number = _show(value, 20)
        raise ValueError(f'needs a unit: write "{number}s" or "{number}ms", not a bare number')
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def _spacing(value: Any) -> float:
    seconds = _duration(value)
    if seconds > 60:
        raise ValueError("must be at most 1m")
    return seconds


def _clock(value: Any) -> time:
    if isinstance(value, str):
        match = _CLOCK.fullmatch(value)
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return time(int(match.group(1)), int(match.group(2)))
    raise ValueError(f'must be a time "HH:MM" such as "08:00", got {_show(value)}')


def _window_time(value: Any) -> str:
    """A maintenance start/end: ``HH:MM`` (weekly) or ``YYYY-MM-DD HH:MM`` (one-off), local."""
    if isinstance(value, str):
        try:
            if _CLOCK.fullmatch(value):
                return _clock(value).strftime("%H:%M")
            if _LOCAL_DATETIME.fullmatch(value):
                return _local_datetime(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    raise ValueError(
        f'must be "YYYY-MM-DD HH:MM" (one-off) or "HH:MM" (weekly), got {_show(value)}'
    )


def _local_datetime(text: str) -> datetime:
    match = _LOCAL_DATETIME.fullmatch(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute = (int(g) for g in match.groups())
    return datetime(year, month, day, hour, minute)


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError(f"must be a file path, got {_show(value)}")
    return Path(value)


def _not_empty(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise ValueError("must list at least one status code")
    return value


def _status_codes(value: Any) -> Any:
    """``expect_status: 200`` is read as ``[200]``: one code is the common case."""
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, Strict(), AfterValidator(_check_id)]
Text = Annotated[str, Strict(), AfterValidator(_check_text)]
IpAddress = Annotated[str, Strict(), AfterValidator(_check_ip)]
TcpTarget = Annotated[str, Strict(), AfterValidator(_check_tcp_target)]
Listen = Annotated[str, Strict(), AfterValidator(_check_listen)]
ProbeUrl = Annotated[str, Strict(), AfterValidator(_check_probe_url)]
Timezone = Annotated[str, Strict(), AfterValidator(_check_timezone)]
Interface = Annotated[str, Strict(), AfterValidator(_check_interface)]
Regex = Annotated[str, Strict(), AfterValidator(_check_regex)]
HeaderName = Annotated[str, AfterValidator(_check_header_name)]
Duration = Annotated[float, BeforeValidator(_duration)]
Spacing = Annotated[float, BeforeValidator(_spacing)]
Clock = Annotated[time, BeforeValidator(_clock)]
WindowTime = Annotated[str, BeforeValidator(_window_time)]
FilePath = Annotated[Path, BeforeValidator(_path)]
SecretUrl = Annotated[Secret, BeforeValidator(_secret_url)]
SecretHeader = Annotated[Secret, BeforeValidator(_secret_header)]
Headers = dict[HeaderName, SecretHeader]
Rounds = Annotated[int, Field(strict=True, ge=1, le=1000)]
Ratio = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]


# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    """Frozen, and strict about keys: a typo in the YAML must never silently do nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Agent(_Model):
    """This vantage point; ``name`` is the ``agent`` label (default: the host name)."""

    name: Id = Field(default_factory=lambda: _default_agent_name(socket.gethostname()))
    timezone: Timezone = "Asia/Makassar"
    language: Literal["id", "en"] = "id"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _default_agent_name(hostname: str) -> str:
    """The short host name made into a valid id (``kab-nunukan.local`` → ``kab-nunukan``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", hostname.split(".")[0])
    name = name.lstrip("._-")[:64]
    return name or "linkmon"


class Server(_Model):
    """The HTTP endpoint. ``listen`` port 0 picks a free port (tests); ``/-/reload`` is off
    unless ``enable_reload`` (a POST must not be able to swap the config by default).
    ``metrics_detail: link`` keeps per probe only success, loss, average RTT and failures: a
    national agent's /metrics shrinks about sixfold when dashboards need no per-target
    histograms."""

    listen: Listen = "127.0.0.1:9840"
    web_config: FilePath | None = None
    enable_reload: Annotated[bool, Strict()] = False
    metrics_detail: Literal["full", "link"] = "full"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class Storage(_Model):
    """The SQLite file; ``:memory:`` keeps nothing across restarts (tests only)."""

    path: FilePath = Path("linkmon.db")


class IcmpSettings(_Model):
    """Echoes per round, their spacing and payload size; small sizes suit 128 kbps links."""

    count: Annotated[int, Field(strict=True, ge=1, le=ICMP_MAX_COUNT)] = 5
    spacing: Spacing = 0.1
    size: Annotated[int, Field(strict=True, ge=ICMP_MIN_SIZE, le=ICMP_MAX_SIZE)] = 56


class Degraded(_Model):
    """A link is degraded when a round loses more than ``loss`` or its RTT exceeds ``rtt``."""

    loss: Ratio = 0.2
    rtt: Duration = 0.3


class ServiceHours(_Model):
    """When an office serves citizens, in the site's local time (for availability reports)."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: Clock = time(8, 0)
    end: Clock = time(15, 0)


class Defaults(_Model):
    interval: Duration = 10.0
    timeout: Duration = 2.0
    icmp: IcmpSettings = IcmpSettings()
    down_after: Rounds = 3
    up_after: Rounds = 2
    degraded: Degraded = Degraded()
    service_hours: ServiceHours = ServiceHours()


class Site(_Model):
    """An office or data center. ``timezone`` defaults to the agent's, ``name`` to ``id``."""

    id: Id
    kind: SiteKind
    name: Text = ""
    parent: Id | None = None
    timezone: Timezone = ""
    service_hours: ServiceHours = ServiceHours()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class _ProbeBase(_Model):
    """What every probe has. Each kind adds ``target_label`` (the ``target`` metric label,
    the same string as ``ProbeResult.target``) and ``spec()`` (what ``Prober.run`` takes)."""

    kind: str
    interval: Duration = 10.0
    timeout: Duration = 2.0
    source: IpAddress | None = None


class IcmpProbe(_ProbeBase):
    """Echo requests to an IP address (no name lookup: a DNS failure must not look like a
    failed link)."""

    kind: Literal["icmp"]
    target: IpAddress
    count: Annotated[int, Field(strict=True, ge=1, le=ICMP_MAX_COUNT)] = 5
    spacing: Spacing = 0.1
    size: Annotated[int, Field(strict=True, ge=ICMP_MIN_SIZE, le=ICMP_MAX_SIZE)] = 56
    interface: Interface | None = None

    @property
    def target_label(self) -> str:
        return self.target

    def spec(self) -> IcmpSpec:
        return IcmpSpec(
            address=self.target,
            count=self.count,
            spacing=self.spacing,
            size=self.size,
            source=self.source,
            interface=self.interface,
        )


class TcpProbe(_ProbeBase):
    """A TCP connect to ``host:port`` (``[IPv6]:port``); the host may be a DNS name."""

    kind: Literal["tcp"]
    target: TcpTarget

    @property
    def host(self) -> str:
        return self.target.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.target.rpartition(":")[2])

    @property
    def target_label(self) -> str:
        return self.target

    def spec(self) -> TcpSpec:
        return TcpSpec(host=self.host, port=self.port, source=self.source)


class HttpProbe(_ProbeBase):
    """A GET of ``url``; healthy when the status is in ``expect_status`` and the body matches."""

    kind: Literal["http"]
    url: ProbeUrl
    expect_status: Annotated[
        tuple[Annotated[int, Field(strict=True, ge=100, le=599)], ...],
        BeforeValidator(_status_codes),
        AfterValidator(_not_empty),
    ] = (200,)
    body_match: Annotated[str, Strict()] | None = None
    body_regex: Regex | None = None
    follow_redirects: Annotated[bool, Strict()] = True
    max_redirects: Annotated[int, Field(strict=True, ge=0, le=30)] = 5
    max_body_bytes: Annotated[int, Field(strict=True, ge=0, le=64 * 1024 * 1024)] = 65536
    verify_tls: Annotated[bool, Strict()] = True
    headers: Headers = {}

    @property
    def target_label(self) -> str:
        return self.url

    def spec(self) -> HttpSpec:
        return HttpSpec(
            url=self.url,
            expect_status=self.expect_status,
            body_match=self.body_match,
            body_regex=self.body_regex,
            follow_redirects=self.follow_redirects,
            max_redirects=self.max_redirects,
            max_body_bytes=self.max_body_bytes,
            verify_tls=self.verify_tls,
            headers=tuple((k, v.get_secret_value()) for k, v in self.headers.items()),
            source=self.source,
        )


ProbeConfig: TypeAlias = IcmpProbe | TcpProbe | HttpProbe
_PROBE_CLASSES: dict[str, type[_ProbeBase]] = {
    "icmp": IcmpProbe,
    "tcp": TcpProbe,
    "http": HttpProbe,
}


class Link(_Model):
    """A path between two sites that this agent measures.

    ``depends_on`` lists upstream links; the link is unreachable (not down) only when ALL of
    them are down, so a kabupaten reaching pusat via the DC or the DRC lists both uplinks.
    """

    id: Id
    from_site: Id = Field(alias="from")
    to_site: Id = Field(alias="to")
    network: Network
    depends_on: tuple[Id, ...] = ()
    interval: Duration = 10.0
    timeout: Duration = 2.0
    down_after: Rounds = 3
    up_after: Rounds = 2
    degraded: Degraded = Degraded()
    icmp: IcmpSettings = IcmpSettings()
    probes: tuple[Annotated[ProbeConfig, Field(discriminator="kind")], ...]


class Receiver(_Model):
    """Where alerts go. ``webhook``: one ``url`` gets Alertmanager webhook JSON (version 4).
    ``alertmanager``: every base URL of an HA cluster (``urls``, or one ``url``) gets
    ``POST <url>/api/v2/alerts``. After loading, ``urls`` holds every URL for both kinds."""

    name: Id
    kind: Literal["webhook", "alertmanager"]
    url: SecretUrl | None = None
    urls: tuple[SecretUrl, ...] = ()
    headers: Headers = {}
    timeout: Duration = 10.0
    send_resolved: Annotated[bool, Strict()] = True


class Flapping(_Model):
    """More than ``changes`` state changes within ``window``: flapping, one alert."""

    changes: Annotated[int, Field(strict=True, ge=2, le=1000)] = 6
    window: Duration = 600.0


class Rollup(_Model):
    """When ``share`` of a kabupaten's kecamatan links (at least ``min_links``) go down
    together, one regional incident instead of one page per kecamatan."""

    share: Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)] = 0.5
    min_links: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 3


class Alerting(_Model):
    receivers: tuple[Receiver, ...] = ()
    resend_interval: Duration = 60.0
    flapping: Flapping = Flapping()
    rollup: Rollup = Rollup()
    outbox_max: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] = 10_000


class MaintenanceWindow(_Model):
    """Planned work on links or sites: alerts are suppressed and the links shown as in
    maintenance. One-off (``start``/``end`` as ``YYYY-MM-DD HH:MM``) or weekly (``weekdays``
    and ``HH:MM``; an end before the start runs past midnight). Times are local to the site
    (a listed link: its ``from`` site) unless ``timezone`` is given."""

    links: tuple[Id, ...] = ()
    sites: tuple[Id, ...] = ()
    weekdays: tuple[Weekday, ...] = ()
    start: WindowTime
    end: WindowTime
    timezone: Timezone | None = None
    reason: Text = ""

    def occurrences(
        self, zone: tzinfo, since: datetime, until: datetime
    ) -> list[tuple[datetime, datetime]]:
        """The (start, end) spans in UTC, in ``zone`` local time, that overlap [since, until)."""
        for moment in (since, until):
            if moment.tzinfo is None:
                raise ValueError("since and until must be timezone-aware (UTC inside)")
        spans: list[tuple[datetime, datetime]] = []
        if not self.weekdays:
            start = _local_datetime(self.start).replace(tzinfo=zone)
            end = _local_datetime(self.end).replace(tzinfo=zone)
            spans.append((start.astimezone(UTC), end.astimezone(UTC)))
        else:
            start_clock, end_clock = _clock(self.start), _clock(self.end)
            day = since.astimezone(zone).date() - timedelta(days=1)
            last = until.astimezone(zone).date()
            while day <= last:
                if WEEKDAYS[day.weekday()] in self.weekdays:
                    end_day = day if end_clock > start_clock else day + timedelta(days=1)
                    start = datetime.combine(day, start_clock, tzinfo=zone)
                    end = datetime.combine(end_day, end_clock, tzinfo=zone)
                    spans.append((start.astimezone(UTC), end.astimezone(UTC)))
                day += timedelta(days=1)
        if since == until:
            return [(s, e) for s, e in spans if s <= since < e]
        return [(s, e) for s, e in spans if s < until and e > since]


class Config(_Model):
    """The whole validated config. Look-ups by id are dictionary look-ups."""

    agent: Agent = Field(default_factory=Agent)
    server: Server = Server()
    storage: Storage = Storage()
    defaults: Defaults = Defaults()
    sites: tuple[Site, ...] = ()
    links: tuple[Link, ...] = ()
    alerting: Alerting = Alerting()
    maintenance: tuple[MaintenanceWindow, ...] = ()

    _sites: dict[str, Site] = PrivateAttr(default_factory=dict)
    _links: dict[str, Link] = PrivateAttr(default_factory=dict)
    _children: dict[str, tuple[Site, ...]] = PrivateAttr(default_factory=dict)
    _links_from: dict[str, tuple[Link, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        self._sites.update((site.id, site) for site in self.sites)
        self._links.update((link.id, link) for link in self.links)
        for site in self.sites:
            if site.parent is not None:
                self._children[site.parent] = (*self._children.get(site.parent, ()), site)
        for link in self.links:
            self._links_from[link.from_site] = (*self._links_from.get(link.from_site, ()), link)

    def site(self, site_id: str) -> Site:
        """The site ``site_id``; ``KeyError`` if there is none."""
        return self._sites[site_id]

    def link(self, link_id: str) -> Link:
        """The link ``link_id``; ``KeyError`` if there is none."""
        return self._links[link_id]

    def links_from(self, site_id: str) -> tuple[Link, ...]:
        """Links whose ``from`` is ``site_id`` (an office's own links, parallel paths too)."""
        return self._links_from.get(site_id, ())

    def children(self, site_id: str) -> tuple[Site, ...]:
        """Sites whose ``parent`` is ``site_id`` (the kecamatan of a kabupaten)."""
        return self._children.get(site_id, ())

    def kabupaten_of(self, site_id: str) -> str | None:
        """The kabupaten/kota a site belongs to: itself, or the first one up its parents."""
        site: Site | None = self._sites.get(site_id)
        while site is not None:
            if site.kind in ("kabupaten", "kota"):
                return site.id
            site = self._sites.get(site.parent) if site.parent else None
        return None

    def kabupaten_of_link(self, link_id: str) -> str | None:
        """The ``kabupaten`` label of a link: that of its ``from`` site, else its ``to`` site."""
        link = self._links[link_id]
        return self.kabupaten_of(link.from_site) or self.kabupaten_of(link.to_site)

    def maintenance_periods(
        self, link_id: str, since: datetime, until: datetime
    ) -> list[tuple[datetime, datetime, MaintenanceWindow]]:
        """Every maintenance span (UTC) covering ``link_id`` that overlaps [since, until),
        sorted by start; for reports, which exclude them from availability."""
        link = self._links[link_id]
        found: list[tuple[datetime, datetime, MaintenanceWindow]] = []
        for window in self.maintenance:
            zone = self._window_zone(window, link)
            if zone is not None:
                found.extend((s, e, window) for s, e in window.occurrences(zone, since, until))
        return sorted(found, key=lambda item: (item[0], item[1]))

    def in_maintenance(self, link_id: str, when: datetime) -> MaintenanceWindow | None:
        """The maintenance window covering ``link_id`` at ``when`` (aware, UTC), if any."""
        periods = self.maintenance_periods(link_id, when, when)
        return periods[0][2] if periods else None

    def _window_zone(self, window: MaintenanceWindow, link: Link) -> ZoneInfo | None:
        """The time zone ``window`` is read in for ``link``, or None if it does not cover it."""
        if link.id in window.links or link.from_site in window.sites:
            site_id = link.from_site
        elif link.to_site in window.sites:
            site_id = link.to_site
        else:
            return None
        return ZoneInfo(window.timezone) if window.timezone else self._sites[site_id].zone


# --------------------------------------------------------------------------- YAML


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _StrictKeys:
    """YAML 1.2 core-schema integers and no duplicate or non-string keys (see module doc)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"keys must be strings, got {_kind_of(key)}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {_show(key)} (first at line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc, no-any-return]

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))  # type: ignore[attr-defined]
        try:
            return int(text)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, "number too long", node.start_mark
            ) from None


class _FastLoader(_StrictKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser: a 10,000-link config in a fraction of the time and memory (a PyYAML
    built without libyaml has no CSafeLoader: then this is the pure-Python parser too)."""


class _Loader(_StrictKeys, yaml.SafeLoader):
    """The pure-Python parser, only to re-read a file libyaml refused: its messages are more
    precise ("found character '\\t' that cannot start any token")."""


for _loader in (_FastLoader, _Loader):
    _loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _loader.add_implicit_resolver(
        _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    _loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
    _loader.add_implicit_resolver(
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )
    _loader.add_constructor(_INT, _loader.construct_yaml_int)  # type: ignore[type-var]


def _read_yaml(text: str) -> Any:
    """The YAML document; a ConfigError message with line and column otherwise."""
    try:
        try:
            return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a SafeLoader
        except yaml.MarkedYAMLError:
            return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise _SingleError(f"{where}{problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else 0
        raise _SingleError(
            f"line {line}, column {column}: character #x{code:04x} is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise _SingleError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _SingleError("nested too deeply") from None


class _SingleError(Exception):
    """A problem that stops reading before validation (syntax, size); becomes a ConfigError."""


def _check_shape(document: Any) -> None:
    """Refuse alias bombs ("billion laughs"), recursive aliases and absurd nesting before
    pydantic walks the expanded tree."""
    count = 0
    on_path: set[int] = set()
    stack: list[tuple[Any, Iterator[Any] | None]] = [(document, None)]
    while stack:
        node, children = stack[-1]
        if children is None:
            count += 1
            if count > MAX_YAML_VALUES:
                raise _SingleError(f"too large: more than {MAX_YAML_VALUES} values (YAML aliases?)")
            if len(stack) > MAX_YAML_DEPTH:
                raise _SingleError(f"nested more than {MAX_YAML_DEPTH} levels deep")
            if isinstance(node, dict | list):
                if id(node) in on_path:
                    raise _SingleError("a YAML alias refers to a node that contains it")
                on_path.add(id(node))
                values = node.values() if isinstance(node, dict) else node
                stack[-1] = (node, iter(list(values)))
                continue
            stack.pop()
            continue
        child = next(children, _END)
        if child is _END:
            on_path.discard(id(node))
            stack.pop()
        else:
            stack.append((child, None))


_END = object()


# --------------------------------------------------------------------------- pydantic errors


_ITEM_LISTS: dict[tuple[str, ...], str] = {
    ("sites",): "sites",
    ("links",): "links",
    ("maintenance",): "maintenance",
    ("alerting", "receivers"): "receivers",
}
"""Lists whose items are set aside whole when they have an error (their index is kept)."""

_Path: TypeAlias = tuple[str | int, ...]
_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


def _plain_loc(loc: tuple[str | int, ...], error_type: str = "") -> _Path:
    """A pydantic location without union tags (``probes.0.icmp.target``) and without the
    ``[key]`` marker pydantic appends for a bad mapping key (but a user's key may be "[key]")."""
    if loc and loc[-1] == "[key]" and error_type != "extra_forbidden":
        loc = loc[:-1]
    out: list[str | int] = []
    for part in loc:
        if (
            len(out) >= 2
            and out[-2] == "probes"
            and isinstance(out[-1], int)
            and part in PROBE_KINDS
        ):
            continue
        out.append(part)
    return tuple(out)


def _format_path(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            shown = part if len(part) <= 40 else part[:37] + "..."
            text += f"[{json.dumps(shown)}]"
    return text


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class at a pydantic location (with union tags), for listing allowed keys."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            if get_origin(current) not in (tuple, list) or not args:
                return None
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return None
            current = field.annotation
        elif part in _PROBE_CLASSES:
            current = _PROBE_CLASSES[part]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that holds the keys or items."""
    while True:
        if hasattr(annotation, "__metadata__"):
            annotation = get_args(annotation)[0]
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) not in (tuple, list, dict, Literal) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as ``path: reason`` in linkmon's words."""
    loc = tuple(error["loc"])
    kind = error["type"]
    path = _plain_loc(loc, kind)
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    given = error.get("input")
    reason: str
    if kind == "missing":
        reason = "required"
    elif kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = [f.alias or n for n, f in model.model_fields.items()] if model else []
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
        if close:
            reason = f"unknown key (did you mean {close[0]!r}?)"
        else:
            reason = f"unknown key (allowed: {', '.join(allowed)})"
    elif kind in ("value_error", "assertion_error"):
        reason = str(ctx.get("error", error["msg"]))
    elif kind == "literal_error":
        reason = f"must be {ctx['expected']}, got {_show(given)}"
    elif kind == "union_tag_invalid":
        path = (*path, "kind")
        reason = f"must be one of {ctx['expected_tags']}, got {_show(ctx['tag'])}"
    elif kind == "union_tag_not_found":
        path = (*path, "kind")
        reason = f"required (one of {', '.join(repr(k) for k in PROBE_KINDS)})"
    elif kind in ("string_type", "string_sub_type"):
        reason = f"must be a string, got {_given(given)}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        reason = f"must be a whole number, got {_given(given)}"
    elif kind in ("float_type", "float_parsing"):
        reason = f"must be a number, got {_given(given)}"
    elif kind == "finite_number":
        reason = "must be a finite number"
    elif kind in ("bool_type", "bool_parsing"):
        reason = f"must be true or false, got {_given(given)}"
    elif kind in ("list_type", "tuple_type"):
        reason = f"must be a list, got {_given(given)}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        reason = f"must be a mapping, got {_given(given)}"
    elif kind == "greater_than":
        reason = f"must be greater than {_number(ctx['gt'])}"
    elif kind == "greater_than_equal":
        reason = f"must be at least {_number(ctx['ge'])}"
    elif kind == "less_than_equal":
        reason = f"must be at most {_number(ctx['le'])}"
    else:
        reason = error["msg"]
    return f"{_format_path(path)}: {reason}" if path else reason


def _number(value: Any) -> str:
    """``1`` rather than ``1.0`` in "must be at most 1"."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _drop_broken(
    document: dict[str, Any], errors: list[ErrorDetails], positions: dict[str, list[int]]
) -> None:
    """Remove what failed validation so the cross-checks can run on the rest: unknown keys
    are deleted, list items with errors are set aside (``positions`` keeps the original
    indices for error paths), anything else falls back to its default."""
    doomed: dict[tuple[str, ...], set[int]] = {}
    for error in errors:
        path = _plain_loc(tuple(error["loc"]), error["type"])
        if error["type"] == "extra_forbidden":
            parent = _walk(document, path[:-1])
            if isinstance(parent, dict) and path[-1] in parent:
                del parent[path[-1]]
                continue
        item = _item_of(path)
        if item is None:
            _delete(document, path)
        else:
            doomed.setdefault(item[0], set()).add(item[1])
    for list_path, indices in doomed.items():
        items = _walk(document, list_path)
        if not isinstance(items, list):
            continue
        for index in sorted(indices, reverse=True):
            if index < len(items):
                del items[index]
                del positions[_ITEM_LISTS[list_path]][index]


def _item_of(path: _Path) -> tuple[tuple[str, ...], int] | None:
    """The list and index of the set-aside-able item ``path`` points into, if any."""
    for list_path in _ITEM_LISTS:
        size = len(list_path)
        index = path[size] if len(path) > size else None
        if path[:size] == list_path and isinstance(index, int):
            return list_path, index
    return None


def _walk(document: Any, path: _Path) -> Any:
    node = document
    for part in path:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return None
        node = node[part]
    return node


def _delete(document: dict[str, Any], path: _Path) -> None:
    """Delete the mapping key nearest to ``path`` so that its default applies."""
    while path:
        parent = _walk(document, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            return
        path = path[:-1]


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, validate and resolve the config file at ``path``; ConfigError lists all errors."""
    file = Path(path)
    source = str(file)
    try:
        info = file.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError("is a directory, not a config file", source)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("is not a regular file", source)
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError(f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", source)
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("no such file", source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            source,
        ) from None
    return parse_config(text, source, base_dir=file.absolute().parent)


LOAD_APART_BYTES = 256 * 1024  # about 1,300 links; below it the parse's heap is small


def load_config_apart(path: str | os.PathLike[str]) -> Config:
    """``load_config`` for the daemon: a large file is loaded in a child process that hands
    back the pickled Config. libyaml builds the whole node tree before Python sees a value,
    and the heap that fragments stays with the process that parsed (80 MB at 10,000 links,
    for the daemon's whole life); the child takes it away when it exits. A small file, or
    a child that cannot run (a daemon that dropped to a user who may not run this Python),
    is loaded here."""
    file = Path(path)
    try:
        large = file.stat().st_size >= LOAD_APART_BYTES
    except OSError:
        large = False  # load_config names what is wrong with the file
    loaded = _load_in_child(file) if large else None
    if isinstance(loaded, ConfigError):
        raise loaded
    return loaded if loaded is not None else load_config(file)


def _load_in_child(file: Path) -> Config | ConfigError | None:
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "from linkmon.config import _load_for_parent; _load_for_parent()",
                str(file),
            ],
            capture_output=True,
            timeout=600,
            check=True,
        )
        loaded = pickle.loads(child.stdout)  # noqa: S301 - our own child's answer
    except (OSError, subprocess.SubprocessError, pickle.UnpicklingError, EOFError) as exc:
        log.warning("cannot load the config in a child process, loading it here: %s", exc)
        return None
    return loaded if isinstance(loaded, Config | ConfigError) else None


def _load_for_parent() -> None:
    """The child of ``load_config_apart``: the loaded Config, or the ConfigError, pickled."""
    try:
        loaded: Config | ConfigError = load_config(sys.argv[1])
    except ConfigError as exc:
        loaded = exc
    sys.stdout.buffer.write(pickle.dumps(loaded, pickle.HIGHEST_PROTOCOL))


def parse_config(text: str, source: str = "<string>", *, base_dir: Path | None = None) -> Config:
    """Validate and resolve config ``text``. Relative paths are taken relative to
    ``base_dir`` (the config file's directory) or, without it, the working directory."""
    try:
        document = _read_yaml(text)
        if document is None:
            raise _SingleError("the config is empty")
        if not isinstance(document, dict):
            raise _SingleError(
                "the top level must be a mapping of sections (agent, sites, links, ...), "
                f"got {_kind_of(document)}"
            )
        _check_shape(document)
    except _SingleError as exc:
        raise ConfigError(str(exc), source) from None
    return _Loading(document, base_dir).run(source)


class _Loading:
    """One load: validation with every error collected, then resolution and cross-checks."""

    def __init__(self, document: dict[str, Any], base_dir: Path | None) -> None:
        self.document = document
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.positions: dict[str, list[int]] = {
            name: list(range(len(items))) if isinstance(items, list) else []
            for list_path, name in _ITEM_LISTS.items()
            for items in [_walk(document, list_path)]
        }
        self.known_sites = self._raw_ids(("sites",), "id")
        self.known_links = self._raw_ids(("links",), "id")
        self.defaults_ok = True

    def _raw_ids(self, list_path: tuple[str, ...], key: str) -> set[str]:
        """Ids of items as written, also of broken ones, so that a reference to a broken
        item is not reported a second time as unknown."""
        items = _walk(self.document, list_path)
        if not isinstance(items, list):
            return set()
        return {i[key] for i in items if isinstance(i, dict) and isinstance(i.get(key), str)}

    def error(self, path: Iterable[str | int], reason: str) -> None:
        message = f"{_format_path(path)}: {reason}"
        if message not in self.errors:
            self.errors.append(message)

    def run(self, source: str) -> Config:
        draft = self._validate()
        config = self._resolve(draft) if draft is not None else None
        if self.errors or config is None:
            raise ConfigError(self.errors or ["invalid config"], source)
        return config

    def _validate(self) -> Config | None:
        """The document as a Config, after setting aside what failed (errors recorded)."""
        context = {"base_dir": self.base_dir}
        data = self.document
        for attempt in range(4):
            try:
                return Config.model_validate(data, context=context)
            except ValidationError as exc:
                details = exc.errors(include_url=False)
                if attempt == 0:
                    for detail in details:
                        message = _describe(detail)
                        if message not in self.errors:
                            self.errors.append(message)
                        if detail["loc"][:1] == ("defaults",):
                            self.defaults_ok = False
                    data = _deep_copy(data)
                _drop_broken(data, details, self.positions)
                for list_path, name in _ITEM_LISTS.items():
                    items = _walk(data, list_path)
                    if not isinstance(items, list):
                        self.positions[name] = []
        return None

    # ---- resolution and cross-checks

    def _resolve(self, draft: Config) -> Config | None:
        defaults = draft.defaults
        if self.defaults_ok:
            self._check_timing(("defaults",), defaults.interval, defaults.timeout)
            self._check_echoes(("defaults",), defaults.icmp, defaults.timeout)
            self._check_hours(("defaults", "service_hours"), defaults.service_hours)
        sites = tuple(
            self._resolve_site(i, site, draft) for i, site in self._each("sites", draft.sites)
        )
        self._check_sites(sites)
        links = tuple(
            self._resolve_link(i, link, defaults) for i, link in self._each("links", draft.links)
        )
        self._check_links(links)
        receivers = tuple(
            self._resolve_receiver(i, r)
            for i, r in self._each("receivers", draft.alerting.receivers)
        )
        self._check_receivers(receivers)
        self._check_maintenance(draft.maintenance)
        server = self._resolve_server(draft.server)
        storage = self._resolve_storage(draft.storage)
        if self.errors:
            return None
        return Config.model_validate(
            {
                "agent": draft.agent,
                "server": server,
                "storage": storage,
                "defaults": defaults,
                "sites": sites,
                "links": links,
                "alerting": draft.alerting.model_copy(update={"receivers": receivers}),
                "maintenance": draft.maintenance,
            }
        )

    def _each(self, name: str, items: tuple[_T, ...]) -> Iterator[tuple[int, _T]]:
        """Items with their index in the file (items set aside leave gaps)."""
        return zip(self.positions[name], items, strict=True)

    def _resolve_site(self, index: int, site: Site, draft: Config) -> Site:
        path = ("sites", index)
        hours = _inherit(site, "service_hours", draft.defaults.service_hours)
        if "service_hours" in site.model_fields_set:
            self._check_hours((*path, "service_hours"), hours)
        return site.model_copy(
            update={
                "name": site.name or site.id,
                "timezone": site.timezone or draft.agent.timezone,
                "service_hours": hours,
            }
        )

    def _check_sites(self, sites: tuple[Site, ...]) -> None:
        by_id: dict[str, int] = {}
        kinds = {site.id: site.kind for site in sites}
        for index, site in self._each("sites", sites):
            path = ("sites", index)
            if site.id in by_id:
                self.error(
                    (*path, "id"), f"duplicate site id {site.id!r} (also sites[{by_id[site.id]}])"
                )
            else:
                by_id[site.id] = index
            if site.parent is None:
                continue
            allowed = PARENT_KINDS[site.kind]
            parent_kind = kinds.get(site.parent)
            if site.parent == site.id:
                self.error((*path, "parent"), "a site cannot be its own parent")
            elif not allowed:
                self.error((*path, "parent"), f"a {site.kind} site has no parent")
            elif parent_kind is None:
                if site.parent not in self.known_sites:
                    self.error((*path, "parent"), f"unknown site {site.parent!r}")
            elif parent_kind not in allowed:
                self.error(
                    (*path, "parent"),
                    f"a {site.kind} belongs to a {' or '.join(allowed)}, "
                    f"but {site.parent!r} is a {parent_kind}",
                )

    def _resolve_link(self, index: int, link: Link, defaults: Defaults) -> Link:
        path: _Path = ("links", index)
        values = {
            key: getattr(link if key in link.model_fields_set else defaults, key)
            for key in ("interval", "timeout", "down_after", "up_after")
        }
        icmp = _inherit(link, "icmp", defaults.icmp)
        set_here = link.model_fields_set
        if not link.probes:
            self.error((*path, "probes"), "a link needs at least one probe")
        self._check_timing(path, values["interval"], values["timeout"], set_here)
        has_icmp = any(isinstance(p, IcmpProbe) for p in link.probes)
        if "icmp" in set_here or ("timeout" in set_here and has_icmp):
            self._check_echoes(path, icmp, values["timeout"])
        probes = tuple(
            self._resolve_probe(
                (*path, "probes", i), probe, values["interval"], values["timeout"], icmp
            )
            for i, probe in enumerate(link.probes)
        )
        seen: dict[tuple[str, str], int] = {}
        for i, probe in enumerate(probes):
            key = (probe.kind, probe.target_label)
            if key in seen:
                self.error(
                    (*path, "probes", i),
                    f"same probe as probes[{seen[key]}] ({probe.kind} {probe.target_label})",
                )
            seen.setdefault(key, i)
        return link.model_copy(
            update={
                **values,
                "icmp": icmp,
                "degraded": _inherit(link, "degraded", defaults.degraded),
                "probes": probes,
            }
        )

    def _resolve_probe(
        self, path: _Path, probe: ProbeConfig, interval: float, timeout: float, icmp: IcmpSettings
    ) -> ProbeConfig:
        set_here = probe.model_fields_set
        update: dict[str, Any] = {
            "interval": probe.interval if "interval" in set_here else interval,
            "timeout": probe.timeout if "timeout" in set_here else timeout,
        }
        self._check_timing(path, update["interval"], update["timeout"], set_here)
        if isinstance(probe, IcmpProbe):
            for key in ("count", "spacing", "size"):
                update[key] = getattr(probe if key in set_here else icmp, key)
            if set_here & {"count", "spacing", "timeout"}:
                echoes = IcmpSettings.model_construct(
                    count=update["count"], spacing=update["spacing"]
                )
                self._check_echoes(path, echoes, update["timeout"])
        target_host = _probe_host(probe)
        if probe.source is not None and target_host is not None:
            source_version = ipaddress.ip_address(probe.source).version
            if source_version != target_host.version:
                self.error(
                    (*path, "source"),
                    f"{probe.source} is IPv{source_version} but the target is "
                    f"IPv{target_host.version}",
                )
        return probe.model_copy(update=update)

    def _check_timing(
        self, path: _Path, interval: float, timeout: float, set_here: set[str] | None = None
    ) -> None:
        """timeout < interval, reported where it was set: the probe, the link or defaults."""
        if timeout < interval:
            return
        if set_here is None or "timeout" in set_here:
            self.error(
                (*path, "timeout"), f"must be less than interval {format_duration(interval)}"
            )
        elif "interval" in set_here:
            self.error(
                (*path, "interval"), f"must be greater than timeout {format_duration(timeout)}"
            )

    def _check_echoes(self, path: _Path, icmp: IcmpSettings, timeout: float) -> None:
        """All echoes of a round must be sent, and the last one answered, within the timeout."""
        total = icmp.count * icmp.spacing
        if total >= timeout:
            self.error(
                path,
                f"icmp count × spacing ({icmp.count} × {format_duration(icmp.spacing)} = "
                f"{format_duration(total)}) must be less than timeout {format_duration(timeout)}",
            )

    def _check_hours(self, path: _Path, hours: ServiceHours) -> None:
        if hours.end <= hours.start:
            self.error((*path, "end"), f"must be after start {hours.start:%H:%M}")

    def _check_links(self, links: tuple[Link, ...]) -> None:
        by_id: dict[str, int] = {}
        for index, link in self._each("links", links):
            path = ("links", index)
            if link.id in by_id:
                self.error(
                    (*path, "id"), f"duplicate link id {link.id!r} (also links[{by_id[link.id]}])"
                )
            else:
                by_id[link.id] = index
            for key, site_id in (("from", link.from_site), ("to", link.to_site)):
                if site_id not in self.known_sites:
                    self.error((*path, key), f"unknown site {site_id!r}")
            if link.from_site == link.to_site:
                self.error((*path, "to"), f"must not be the same site as from ({link.from_site!r})")
            listed: set[str] = set()
            for i, upstream in enumerate(link.depends_on):
                where = (*path, "depends_on", i)
                if upstream == link.id:
                    self.error(where, "a link cannot depend on itself")
                elif upstream in listed:
                    self.error(where, f"{upstream!r} is listed twice")
                elif upstream not in self.known_links:
                    self.error(where, f"unknown link {upstream!r}")
                listed.add(upstream)
        index_of = {link.id: index for index, link in self._each("links", links)}
        self._check_cycles(links, index_of)

    def _check_cycles(self, links: tuple[Link, ...], index_of: dict[str, int]) -> None:
        """Name each dependency cycle once, at its link listed first in the file."""
        upstream = {
            link.id: [u for u in link.depends_on if u in index_of and u != link.id]
            for link in links
        }
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        reported: set[frozenset[str]] = set()
        for root in upstream:
            if root in state:
                continue
            path = [root]
            state[root] = 1
            stack = [iter(upstream[root])]
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt) :]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        first = min(cycle, key=lambda link_id: index_of[link_id])
                        at = cycle.index(first)
                        ordered = cycle[at:] + cycle[:at] + [first]
                        self.error(
                            ("links", index_of[first], "depends_on"),
                            f"dependency cycle: {' -> '.join(ordered)}",
                        )
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(upstream[nxt]))

    def _resolve_receiver(self, index: int, receiver: Receiver) -> Receiver:
        path = ("alerting", "receivers", index)
        if receiver.url is not None and receiver.urls:
            self.error(path, "give url or urls, not both")
        elif receiver.kind == "webhook" and receiver.urls:
            self.error((*path, "urls"), "a webhook receiver takes one url")
        elif receiver.url is None and not receiver.urls:
            self.error((*path, "url"), "required")
        urls = receiver.urls or ((receiver.url,) if receiver.url else ())
        return receiver.model_copy(update={"urls": urls})

    def _check_receivers(self, receivers: tuple[Receiver, ...]) -> None:
        by_name: dict[str, int] = {}
        for index, receiver in self._each("receivers", receivers):
            if receiver.name in by_name:
                self.error(
                    ("alerting", "receivers", index, "name"),
                    f"duplicate receiver name {receiver.name!r} "
                    f"(also alerting.receivers[{by_name[receiver.name]}])",
                )
            else:
                by_name[receiver.name] = index

    def _check_maintenance(self, windows: tuple[MaintenanceWindow, ...]) -> None:
        for index, window in self._each("maintenance", windows):
            path: _Path = ("maintenance", index)
            if not window.links and not window.sites:
                self.error(path, "covers nothing: list links or sites")
            for key, ids, known in (
                ("links", window.links, self.known_links),
                ("sites", window.sites, self.known_sites),
            ):
                for i, item in enumerate(ids):
                    if item not in known:
                        self.error((*path, key, i), f"unknown {key[:-1]} {item!r}")
            weekly = bool(window.weekdays)
            clocks = [bool(_CLOCK.fullmatch(t)) for t in (window.start, window.end)]
            for key, is_clock in zip(("start", "end"), clocks, strict=True):
                if weekly and not is_clock:
                    self.error((*path, key), 'a weekly window takes a time "HH:MM", not a date')
                elif not weekly and is_clock:
                    self.error(
                        (*path, key),
                        'a one-off window needs "YYYY-MM-DD HH:MM" '
                        "(or add weekdays for a weekly one)",
                    )
            if clocks == [weekly, weekly]:
                if weekly and window.start == window.end:
                    self.error((*path, "end"), f"must differ from start {window.start}")
                elif not weekly and window.end <= window.start:
                    self.error((*path, "end"), f"must be after start {window.start}")

    def _resolve_server(self, server: Server) -> Server:
        if server.web_config is None:
            return server
        web_config = self._absolute(server.web_config)
        mode = self._file_mode(("server", "web_config"), web_config, must_exist=True)
        if mode is not None and not stat.S_ISREG(mode):
            self.error(("server", "web_config"), f"not a regular file: {_clip(str(web_config))}")
        return server.model_copy(update={"web_config": web_config})

    def _resolve_storage(self, storage: Storage) -> Storage:
        if str(storage.path) == ":memory:":
            return storage
        path = self._absolute(storage.path)
        mode = self._file_mode(("storage", "path"), path, must_exist=False)
        if mode is not None and stat.S_ISDIR(mode):
            self.error(("storage", "path"), f"{_clip(str(path))} is a directory")
        return storage.model_copy(update={"path": path})

    def _file_mode(self, where: _Path, path: Path, *, must_exist: bool) -> int | None:
        """``stat`` mode of a file the config names, None if there is none (an error if it
        must exist: the web config; the SQLite file is created on first start)."""
        try:
            return path.stat().st_mode
        except FileNotFoundError:
            if must_exist:
                self.error(where, f"no such file: {_clip(str(path))}")
        except OSError as exc:
            self.error(where, f"cannot use {_clip(str(path))}: {exc.strerror}")
        return None

    def _absolute(self, path: Path) -> Path:
        return (
            self.base_dir / path if self.base_dir is not None and not path.is_absolute() else path
        )


def _inherit(owner: BaseModel, key: str, inherited: _M) -> _M:
    """``owner.key`` with the keys it did not set taken from ``inherited``."""
    own: BaseModel = getattr(owner, key)
    if key not in owner.model_fields_set:
        return inherited
    return inherited.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})


def _probe_host(probe: ProbeConfig) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The target's IP address, when the target is one (not a DNS name)."""
    if isinstance(probe, IcmpProbe):
        host = probe.target
    elif isinstance(probe, TcpProbe):
        host = probe.host
    else:
        host = urllib.parse.urlsplit(probe.url).hostname or ""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _deep_copy(value: Any) -> Any:
    """A copy of the YAML document that can be pruned without touching the original."""
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
