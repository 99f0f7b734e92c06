"""pydantic's errors in linkmon's words: ``links[0].probes[0].count: must be at least 1``, a
path as the YAML is written (no union tags), a reason that says what was expected and what was
given, and for an unknown key the key that was probably meant."""

from __future__ import annotations

import difflib
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .errors import Location, given, show
from .model import PROBE_CLASSES, PROBE_KINDS, Config


def plain_loc(loc: tuple[str | int, ...], error_type: str = "") -> Location:
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
        elif part in PROBE_CLASSES:
            current = PROBE_CLASSES[part]
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


def describe(error: ErrorDetails) -> tuple[Location, str]:
    """One pydantic error as its path and the reason, in linkmon's words."""
    loc = tuple(error["loc"])
    kind = error["type"]
    path = plain_loc(loc, kind)
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
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
        reason = f"must be {ctx['expected']}, got {show(value)}"
    elif kind == "union_tag_invalid":
        path = (*path, "kind")
        reason = f"must be one of {ctx['expected_tags']}, got {show(ctx['tag'])}"
    elif kind == "union_tag_not_found":
        path = (*path, "kind")
        reason = f"required (one of {', '.join(repr(k) for k in PROBE_KINDS)})"
    elif kind in ("string_type", "string_sub_type"):
        reason = f"must be a string, got {given(value)}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        reason = f"must be a whole number, got {given(value)}"
    elif kind in ("float_type", "float_parsing"):
        reason = f"must be a number, got {given(value)}"
    elif kind == "finite_number":
        reason = "must be a finite number"
    elif kind in ("bool_type", "bool_parsing"):
        reason = f"must be true or false, got {given(value)}"
    elif kind in ("list_type", "tuple_type"):
        reason = f"must be a list, got {given(value)}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        reason = f"must be a mapping, got {given(value)}"
    elif kind == "greater_than":
        reason = f"must be greater than {_number(ctx['gt'])}"
    elif kind == "greater_than_equal":
        reason = f"must be at least {_number(ctx['ge'])}"
    elif kind == "less_than_equal":
        reason = f"must be at most {_number(ctx['le'])}"
    else:
        reason = error["msg"]
    return path, reason


def _number(value: Any) -> str:
    """``1`` rather than ``1.0`` in "must be at most 1"."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
