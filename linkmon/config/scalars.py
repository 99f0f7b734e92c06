"""Scalar checks: one value at a time (an id, an address, a duration, a URL, a time of day),
each with the message a NOC engineer needs to fix it. The ``Annotated`` types at the end are
what the model's fields are declared with."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import urllib.parse
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from linkmon.durations import parse_duration
from probes.icmp import MAX_COUNT as ICMP_MAX_COUNT
from probes.icmp import MAX_SIZE as ICMP_MAX_SIZE
from probes.icmp import MIN_SIZE as ICMP_MIN_SIZE

from .errors import kind_of, show

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_LOCAL_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})")
_ZONE_HINT = "use an IANA name: Asia/Jakarta (WIB), Asia/Makassar (WITA), Asia/Jayapura (WIT)"


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {show(value)}"
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
        raise ValueError(f"must be an IPv4 or IPv6 address, got {show(value)}") from None


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
            raise ValueError(f"{form}, got {show(value)}")
        try:
            if ipaddress.ip_address(host).version != 6:
                raise ValueError
        except ValueError:
            raise ValueError(f"{show(host)} in brackets is not an IPv6 address") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"{form}, got {show(value)}")
        if ":" in host:
            fixed = f"[{host}]:{port_text}"
            hint = f': "{fixed}"' if len(fixed) <= 60 else ""
            raise ValueError(f"an IPv6 address needs brackets{hint}")
        if not _is_host(host):
            raise ValueError(f"{show(host)} is not an IP address or host name")
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ValueError(f"port must be a number from {min_port} to 65535, got {show(port_text)}")
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


def url_problem(url: str, *, allow_userinfo: bool) -> str | None:
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
    problem = url_problem(value, allow_userinfo=False)
    if problem:
        raise ValueError(problem if "@" in value else f"{problem}, got {show(value)}")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {show(value)} ({_ZONE_HINT})") from None
    return value


def _check_interface(value: str) -> str:
    """A Linux interface name: 1-15 printable characters, no '/', ':' or space."""
    forbidden = any(c.isspace() or c in "/:" or not c.isprintable() for c in value)
    if not 0 < len(value) < 16 or forbidden or value in (".", ".."):
        raise ValueError(f"must be a network interface name (1-15 characters), got {show(value)}")
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _check_header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"invalid header name {show(value)}")
    return value


def _duration(value: Any) -> float:
    """A duration string to seconds; bare numbers are refused (seconds or milliseconds?)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f'must be a duration such as "10s" or "500ms", got {kind_of(value)}')
    if not isinstance(value, str):
        number = show(value, 20)
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
        match = CLOCK.fullmatch(value)
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return time(int(match.group(1)), int(match.group(2)))
    raise ValueError(f'must be a time "HH:MM" such as "08:00", got {show(value)}')


def _window_time(value: Any) -> str:
    """A maintenance start/end: ``HH:MM`` (weekly) or ``YYYY-MM-DD HH:MM`` (one-off), local."""
    if isinstance(value, str):
        try:
            if CLOCK.fullmatch(value):
                return _clock(value).strftime("%H:%M")
            if _LOCAL_DATETIME.fullmatch(value):
                return _local_datetime(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    raise ValueError(f'must be "YYYY-MM-DD HH:MM" (one-off) or "HH:MM" (weekly), got {show(value)}')


def _local_datetime(text: str) -> datetime:
    match = _LOCAL_DATETIME.fullmatch(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute = (int(g) for g in match.groups())
    return datetime(year, month, day, hour, minute)


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError(f"must be a file path, got {show(value)}")
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
Rounds = Annotated[int, Field(strict=True, ge=1, le=1000)]
Ratio = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
EchoCount = Annotated[int, Field(strict=True, ge=1, le=ICMP_MAX_COUNT)]
EchoSize = Annotated[int, Field(strict=True, ge=ICMP_MIN_SIZE, le=ICMP_MAX_SIZE)]
StatusCodes = Annotated[
    tuple[Annotated[int, Field(strict=True, ge=100, le=599)], ...],
    BeforeValidator(_status_codes),
    AfterValidator(_not_empty),
]
