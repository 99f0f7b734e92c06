"""The OpenAPI document and its JSON Schema of GET /api/v1/status.

The fixture status document must validate, and the schema must be strict enough that a
missing, misspelt or mistyped field anywhere is caught: the live daemon's JSON is checked
against the same schema (``status_schema()``) in the end-to-end tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from linkmon import __version__
from linkmon.api.openapi import openapi_document, shape_problems, status_schema
from tests.support.status_fixture import all_up, nunukan_status

VALIDATOR = jsonschema.Draft202012Validator(
    status_schema(), format_checker=jsonschema.FormatChecker()
)


def errors(doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)
    ]


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(status_schema())


@pytest.mark.parametrize(
    "doc", [nunukan_status(), all_up(nunukan_status())], ids=["nunukan-incident", "all-up"]
)
def test_fixture_documents_validate(doc: dict[str, Any]) -> None:
    assert errors(doc) == []
    assert shape_problems(doc) == []


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


def test_every_object_is_closed_and_every_field_required() -> None:
    objects = list(_objects(status_schema()))
    assert len(objects) >= 10
    for schema in objects:
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field of every object in the document, by path."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*path, key)
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for n, value in enumerate(doc):
            yield from _paths(value, (*path, n))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def test_removing_any_field_anywhere_is_caught() -> None:
    """Every kind of field of the fixture, one at a time: the schema and the client notice."""
    doc = nunukan_status()
    kinds: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for path in _paths(doc):
        kinds.setdefault(tuple("*" if isinstance(p, int) else p for p in path), path)
    assert len(kinds) > 60
    for path in kinds.values():
        holder = _at(doc, path[:-1])
        value = holder.pop(path[-1])
        try:
            assert errors(doc), f"{path} may be missing"
            assert shape_problems(doc), f"the client misses {path}"
        finally:
            holder[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("links", 0, "rtt_seconds"), "45 ms", "'45 ms' is not valid"),
        (("links", 0, "loss"), 1.5, "1.5 is not valid"),
        (("links", 0, "state"), "flapping", "'flapping' is not one of"),
        (("links", 0, "since"), "2026-11-25T08:12:00+08:00", "does not match"),
        (("links", 0, "network"), "dialup", "'dialup' is not one of"),
        (("summary", "state"), "unreachable", "'unreachable' is not one of"),
        (("summary", "offices_online"), -1, "less than the minimum"),
        (("sites", 3, "kind"), "desa", "'desa' is not one of"),
        (("agent", "language"), "jv", "'jv' is not one of"),
        (("outages", 0, "alerted"), "yes", "'yes' is not of type 'boolean'"),
        (("links", 0, "probes", 0, "kind"), "snmp", "'snmp' is not one of"),
    ],
    ids=lambda v: str(v) if not isinstance(v, tuple) else "-".join(map(str, v)),
)
def test_wrong_values_are_caught(path: tuple[Any, ...], value: Any, message: str) -> None:
    doc = nunukan_status()
    _at(doc, path[:-1])[path[-1]] = value
    found = errors(doc)
    assert any(message in error for error in found), found


def test_unknown_fields_are_refused_by_the_schema_but_tolerated_by_the_client() -> None:
    doc = nunukan_status()
    doc["links"][2]["jitter_seconds"] = 0.001
    assert any("'jitter_seconds' was unexpected" in e for e in errors(doc))
    assert shape_problems(doc) == [], "an older client still reads a newer daemon"


def test_shape_problems_name_the_path() -> None:
    doc = nunukan_status()
    doc["links"][7]["probes"][0]["success"] = "no"
    doc["sites"][0]["service"] = 3
    assert shape_problems(doc) == [
        "sites[0].service: expected object, got int",
        "links[7].probes[0].success: expected boolean, got str",
    ]


def test_openapi_document() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == __version__
    response = document["paths"]["/api/v1/status"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Status"
    }
    assert document["components"]["schemas"] == status_schema()["components"]["schemas"]
    json.dumps(document)  # served as JSON as it is
    refs = [
        value for path in _paths(document) if path[-1] == "$ref" for value in [_at(document, path)]
    ]
    for ref in refs:
        assert _at(document, tuple(ref.removeprefix("#/").split("/"))), ref


def _serves_openapi() -> bool:
    from linkmon.web import create_app

    return any(
        getattr(route, "path", None) == "/api/v1/openapi.json"
        for route in create_app(_Source()).routes
    )


class _Source:
    """The least a StatusSource must offer, answering with the fixture document."""

    ready = True
    reload_enabled = False

    def render_metrics(self) -> list[bytes]:
        return []

    def status(self) -> dict[str, Any]:
        return nunukan_status()

    async def reload(self) -> tuple[bool, str]:
        return False, "not here"


@pytest.mark.skipif(
    not _serves_openapi(),
    reason="linkmon.web does not route "
    "/api/v1/openapi.json yet (the lead wires it to openapi_document())",
)
def test_the_web_app_serves_this_document() -> None:
    from linkmon.web import create_app

    with TestClient(create_app(_Source())) as client:
        served = client.get("/api/v1/openapi.json")
        status = client.get("/api/v1/status")
    assert served.status_code == 200
    assert served.json() == openapi_document()
    assert errors(status.json()) == []
