"""Reading the YAML: a safe loader that follows YAML 1.2 for plain scalars (``15:00`` stays the
string "15:00" where YAML 1.1 reads 900, ``no``/``on`` stay strings, ``2026-11-30 22:00:00``
is not turned into a datetime), refuses duplicate and non-string keys, and, before anything
walks the tree, alias bombs, recursive aliases and absurd nesting. libyaml parses; the
pure-Python parser only re-reads a file libyaml refused, for its more precise message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from .errors import kind_of, show

MAX_YAML_VALUES = 500_000
MAX_YAML_DEPTH = 64


class ReadError(Exception):
    """A problem that stops reading before validation (syntax, size); becomes a ConfigError."""


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
                    None, None, f"keys must be strings, got {kind_of(key)}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {show(key)} (first at line {seen[key] + 1})",
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


def read_yaml(text: str) -> Any:
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
        raise ReadError(f"{where}{problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else 0
        raise ReadError(
            f"line {line}, column {column}: character #x{code:04x} is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise ReadError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ReadError("nested too deeply") from None


def check_shape(document: Any) -> None:
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
                raise ReadError(f"too large: more than {MAX_YAML_VALUES} values (YAML aliases?)")
            if len(stack) > MAX_YAML_DEPTH:
                raise ReadError(f"nested more than {MAX_YAML_DEPTH} levels deep")
            if isinstance(node, dict | list):
                if id(node) in on_path:
                    raise ReadError("a YAML alias refers to a node that contains it")
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
