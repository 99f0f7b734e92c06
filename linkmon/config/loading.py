"""Loading: a file or a text becomes a :class:`Config`, or a ConfigError listing every mistake.

1. The YAML is read (``reading``): strict keys, YAML 1.2 scalars, no alias bombs.
2. pydantic validates types and formats (``model``, ``scalars``, ``secrets``); its errors are
   put in linkmon's words (``messages``). What failed is set aside, so that the checks below
   still run on the rest: a NOC engineer fixing a config over a thin link should not need ten
   round trips.
3. Defaults flow down and the checks on effective settings run (``inheritance``); references,
   ids and the other checks across items follow (``crosschecks``); relative paths are taken
   from the config file's directory, and the files named must be usable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .crosschecks import (
    Indexed,
    Written,
    check_links,
    check_maintenance,
    check_receivers,
    check_sites,
)
from .errors import ConfigError, Findings, Location, clip, kind_of
from .inheritance import Inheritance
from .messages import describe, plain_loc
from .model import Config, Receiver, Server, Storage
from .reading import ReadError, check_shape, read_yaml

MAX_FILE_BYTES = 16 * 1024 * 1024
_T = TypeVar("_T")


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


def parse_config(text: str, source: str = "<string>", *, base_dir: Path | None = None) -> Config:
    """Validate and resolve config ``text``. Relative paths are taken relative to
    ``base_dir`` (the config file's directory) or, without it, the working directory."""
    try:
        document = read_yaml(text)
        if document is None:
            raise ReadError("the config is empty")
        if not isinstance(document, dict):
            raise ReadError(
                "the top level must be a mapping of sections (agent, sites, links, ...), "
                f"got {kind_of(document)}"
            )
        check_shape(document)
    except ReadError as exc:
        raise ConfigError(str(exc), source) from None
    return _Loading(document, base_dir).run(source)


class _Loading:
    """One load: validation with every error collected, then resolution and the checks."""

    def __init__(self, document: dict[str, Any], base_dir: Path | None) -> None:
        self.document = document
        self.base_dir = base_dir
        self.found = Findings()
        self.positions: dict[str, list[int]] = {
            name: list(range(len(items))) if isinstance(items, list) else []
            for list_path, name in _ITEM_LISTS.items()
            for items in [_walk(document, list_path)]
        }
        links = self._written_items(("links",))
        self.written = Written(
            sites=frozenset(_ids(self._written_items(("sites",)), "id")),
            links=frozenset(_ids(links, "id")),
            linked_sites=frozenset(_ids(links, "from") + _ids(links, "to")),
        )
        self.defaults_ok = True

    def _written_items(self, list_path: tuple[str, ...]) -> list[Any]:
        items = _walk(self.document, list_path)
        return items if isinstance(items, list) else []

    def run(self, source: str) -> Config:
        draft = self._validate()
        config = self._resolve(draft) if draft is not None else None
        if self.found.messages or config is None:
            raise ConfigError(self.found.messages or ["invalid config"], source)
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
                        self.found.add(*describe(detail))
                        if detail["loc"][:1] == ("defaults",):
                            self.defaults_ok = False
                    data = _deep_copy(data)
                _drop_broken(data, details, self.positions)
                for list_path, name in _ITEM_LISTS.items():
                    items = _walk(data, list_path)
                    if not isinstance(items, list):
                        self.positions[name] = []
        return None

    def _resolve(self, draft: Config) -> Config | None:
        flow = Inheritance(draft.defaults, draft.agent.timezone)
        sites = [(i, flow.site(("sites", i), site)) for i, site in self._each("sites", draft.sites)]
        check_sites(self.found, sites, self.written)
        links = [(i, flow.link(("links", i), link)) for i, link in self._each("links", draft.links)]
        flow.check(self.found, defaults_ok=self.defaults_ok)
        check_links(self.found, links, self.written)
        receivers = self._each("receivers", draft.alerting.receivers)
        check_receivers(self.found, receivers)
        check_maintenance(self.found, self._each("maintenance", draft.maintenance), self.written)
        server = self._resolve_server(draft.server)
        storage = self._resolve_storage(draft.storage)
        if self.found.messages:
            return None
        return Config.model_validate(
            {
                "agent": draft.agent,
                "server": server,
                "storage": storage,
                "defaults": draft.defaults,
                "sites": tuple(site for _, site in sites),
                "links": tuple(link for _, link in links),
                "alerting": draft.alerting.model_copy(
                    update={"receivers": tuple(_all_urls(receiver) for _, receiver in receivers)}
                ),
                "maintenance": draft.maintenance,
            }
        )

    def _each(self, name: str, items: tuple[_T, ...]) -> Indexed[_T]:
        """Items with their index in the file (items set aside leave gaps)."""
        return list(zip(self.positions[name], items, strict=True))

    def _resolve_server(self, server: Server) -> Server:
        if server.web_config is None:
            return server
        web_config = self._absolute(server.web_config)
        mode = self._file_mode(("server", "web_config"), web_config, must_exist=True)
        if mode is not None and not stat.S_ISREG(mode):
            self.found.add(("server", "web_config"), f"not a regular file: {clip(str(web_config))}")
        return server.model_copy(update={"web_config": web_config})

    def _resolve_storage(self, storage: Storage) -> Storage:
        if str(storage.path) == ":memory:":
            return storage
        path = self._absolute(storage.path)
        mode = self._file_mode(("storage", "path"), path, must_exist=False)
        if mode is not None and stat.S_ISDIR(mode):
            self.found.add(("storage", "path"), f"{clip(str(path))} is a directory")
        return storage.model_copy(update={"path": path})

    def _file_mode(self, where: Location, path: Path, *, must_exist: bool) -> int | None:
        """``stat`` mode of a file the config names, None if there is none (an error if it
        must exist: the web config; the SQLite file is created on first start)."""
        try:
            return path.stat().st_mode
        except FileNotFoundError:
            if must_exist:
                self.found.add(where, f"no such file: {clip(str(path))}")
        except OSError as exc:
            self.found.add(where, f"cannot use {clip(str(path))}: {exc.strerror}")
        return None

    def _absolute(self, path: Path) -> Path:
        return (
            self.base_dir / path if self.base_dir is not None and not path.is_absolute() else path
        )


def _all_urls(receiver: Receiver) -> Receiver:
    """``urls`` holds every URL, for both kinds: one ``url`` is a list of one."""
    urls = receiver.urls or ((receiver.url,) if receiver.url else ())
    return receiver.model_copy(update={"urls": urls})


def _ids(items: list[Any], key: str) -> list[str]:
    """``key`` of every item as written, also of broken ones."""
    return [i[key] for i in items if isinstance(i, dict) and isinstance(i.get(key), str)]


# ---- setting aside what failed validation

_ITEM_LISTS: dict[tuple[str, ...], str] = {
    ("sites",): "sites",
    ("links",): "links",
    ("maintenance",): "maintenance",
    ("alerting", "receivers"): "receivers",
}
"""Lists whose items are set aside whole when they have an error (their index is kept)."""


def _drop_broken(
    document: dict[str, Any], errors: list[ErrorDetails], positions: dict[str, list[int]]
) -> None:
    """Remove what failed validation so the cross-checks can run on the rest: unknown keys
    are deleted, list items with errors are set aside (``positions`` keeps the original
    indices for error paths), anything else falls back to its default."""
    doomed: dict[tuple[str, ...], set[int]] = {}
    for error in errors:
        path = plain_loc(tuple(error["loc"]), error["type"])
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


def _item_of(path: Location) -> tuple[tuple[str, ...], int] | None:
    """The list and index of the set-aside-able item ``path`` points into, if any."""
    for list_path in _ITEM_LISTS:
        size = len(list_path)
        index = path[size] if len(path) > size else None
        if path[:size] == list_path and isinstance(index, int):
            return list_path, index
    return None


def _walk(document: Any, path: Location) -> Any:
    node = document
    for part in path:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return None
        node = node[part]
    return node


def _delete(document: dict[str, Any], path: Location) -> None:
    """Delete the mapping key nearest to ``path`` so that its default applies."""
    while path:
        parent = _walk(document, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            return
        path = path[:-1]


def _deep_copy(value: Any) -> Any:
    """A copy of the YAML document that can be pruned without touching the original."""
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
