"""Checks and helpers for the optional source address every probe kind takes."""

from __future__ import annotations

import ipaddress
import socket


def check_source(kind: str, source: str | None, target_host: str) -> None:
    """ValueError unless ``source`` is an IP address, of the same version as an IP target."""
    if source is None:
        return
    try:
        ours = ipaddress.ip_address(source)
    except ValueError:
        raise ValueError(f"{kind} source must be an IP address, got {source!r}") from None
    try:
        theirs = ipaddress.ip_address(target_host.strip("[]"))
    except ValueError:
        return  # a host name: resolved later, in the source's family
    if ours.version != theirs.version:
        raise ValueError(
            f"{kind} source {source} is IPv{ours.version} but the target {target_host} "
            f"is IPv{theirs.version}"
        )


def family_of(source: str | None) -> socket.AddressFamily:
    """The address family to resolve targets in: the source's, or any without one."""
    if source is None:
        return socket.AF_UNSPEC
    return socket.AF_INET6 if ipaddress.ip_address(source).version == 6 else socket.AF_INET
