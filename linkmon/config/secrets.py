"""Secrets in the config: receiver URLs and header values (and HTTP probe header values) may
be ``${ENV_VAR}`` anywhere in the value or ``file:/path`` for the whole value. They are read at
load time into a :class:`Secret`, which shows where the value came from and never the value:
not in ``repr``, not in a serialised config, not in an error."""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import core_schema

from .errors import clip, kind_of
from .scalars import HeaderName, url_problem

MAX_SECRET_BYTES = 64 * 1024


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
        where = f"secret file {clip(str(path))}"
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
        raise ValueError(f"must be a URL string, got {kind_of(value)}")
    url = _reveal(value, _base_dir(info))
    problem = url_problem(url, allow_userinfo=True)
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
        raise ValueError(f"must be a string, got {kind_of(value)}")
    text = _reveal(value, _base_dir(info))
    if not all(" " <= c <= "~" or c == "\t" for c in text):
        raise ValueError("must be printable ASCII, without line breaks")
    return Secret(text, _mask_userinfo(value) if _is_template(value) else "***")


def _mask_userinfo(template: str) -> str:
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", template)


SecretUrl = Annotated[Secret, BeforeValidator(_secret_url)]
SecretHeader = Annotated[Secret, BeforeValidator(_secret_header)]
Headers = dict[HeaderName, SecretHeader]
