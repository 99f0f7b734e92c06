"""What a config error is and how it reads: ``ConfigError`` with every ``path: reason``, the
listing ``check-config`` prints, and how values and paths are written into messages (quoted,
escaped, clipped: a message is one line, whatever the YAML held)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TypeAlias

Location: TypeAlias = tuple[str | int, ...]
"""A place in the YAML document: ``("links", 3, "probes", 0, "timeout")``."""


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


class Findings:
    """The errors of one load, in the order found, each once: a value inherited by a hundred
    probes is one mistake, not a hundred."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: Iterable[str | int], reason: str) -> None:
        text = format_path(path)
        message = f"{text}: {reason}" if text else reason
        if message not in self.messages:
            self.messages.append(message)


def format_path(path: Iterable[str | int]) -> str:
    """``links[3].probes[0].timeout``; a key that is not a plain word is quoted, clipped."""
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


def show(value: object, limit: int = 60) -> str:
    """A value for an error message: quoted, escaped (no raw newlines), and kept short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 100) -> str:
    """A path or name for a message, unquoted but kept short."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def given(value: object) -> str:
    """The offending value for a type error: scalars as written, containers by kind."""
    if isinstance(value, str | float | int) and not isinstance(value, bool):
        return show(value)
    return kind_of(value)


def kind_of(value: object) -> str:
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
