"""The OpenAPI 3.1 description of ``GET /api/v1/status``, served at ``/api/v1/openapi.json``.

Scripts and other NOC tools are built against this document, so it is strict: every field is
required (absent values are ``null``, never missing) and no object takes fields it does not
name. A test validates the status JSON against it, so the two cannot drift apart silently.
"""

from __future__ import annotations

from typing import Any

from .. import __version__

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

LINK_STATES = ("up", "degraded", "down", "unknown", "unreachable")
SUMMARY_STATES = ("up", "degraded", "down", "unknown")
SERVICE_STATES = ("available", "degraded", "unavailable", "unknown")
SITE_KINDS = ("kecamatan", "kabupaten", "kota", "provinsi", "pusat", "drc")
NETWORKS = ("m2m", "jip", "vpn", "internet", "starlink", "other")
PROBE_KINDS = ("icmp", "tcp", "http")
LANGUAGES = ("id", "en")

Schema = dict[str, Any]

# UTC, always with Z: people-facing renderings convert to the site's zone themselves.
_TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$",
    "examples": ["2026-11-25T00:12:00Z"],
}
_ID: Schema = {"type": "string", "minLength": 1}
_RATIO: Schema = {"type": "number", "minimum": 0, "maximum": 1}
_SECONDS: Schema = {"type": "number", "minimum": 0}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(description: str, properties: dict[str, Schema]) -> Schema:
    """A closed object whose every property is required."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _schemas() -> dict[str, Schema]:
    link_counts = {state: {"type": "integer", "minimum": 0} for state in LINK_STATES}
    return {
        "Status": _object(
            "Everything this agent knows right now.",
            {
                "agent": _ref("Agent"),
                "generated_at": _TIMESTAMP,
                "summary": _ref("Summary"),
                "sites": {"type": "array", "items": _ref("Site")},
                "links": {"type": "array", "items": _ref("Link")},
                "outages": {"type": "array", "items": _ref("Outage")},
                "maintenance": {"type": "array", "items": _ref("MaintenanceWindow")},
            },
        ),
        "Agent": _object(
            "The linkmon instance (vantage point) that answered.",
            {
                "name": _ID,
                "timezone": {"type": "string", "description": "IANA zone, e.g. Asia/Makassar."},
                "zone_abbr": {"type": "string", "examples": ["WIB", "WITA", "WIT"]},
                "language": {"enum": list(LANGUAGES)},
                "version": {"type": "string"},
                "started_at": _TIMESTAMP,
            },
        ),
        "Summary": _object(
            "The one-glance answer; `state` is what `linkmon status` exits with.",
            {
                "state": {"enum": list(SUMMARY_STATES)},
                "links": _object("Number of links in each state.", link_counts),
                "offices_online": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Offices able to serve citizens online now "
                    "(service available or degraded).",
                },
                "offices_total": {"type": "integer", "minimum": 0},
            },
        ),
        "Site": _object(
            "An office or data center.",
            {
                "id": _ID,
                "kind": {"enum": list(SITE_KINDS)},
                "name": {"type": "string"},
                "parent": _nullable(_ID),
                "kabupaten": _nullable(_ID),
                "timezone": {"type": "string"},
                "zone_abbr": {"type": "string"},
                "service": {
                    **_nullable(_ref("Service")),
                    "description": "Can this office serve online; null for pusat and DRC, "
                    "which are where the service lives.",
                },
            },
        ),
        "Service": _object(
            "Whether an office can serve citizens online right now.",
            {
                "state": {"enum": list(SERVICE_STATES)},
                "via": {
                    "type": "array",
                    "items": _ID,
                    "description": "Links of the working path to pusat, office first.",
                },
                "reason": {
                    "type": "string",
                    "description": "drc or backup when degraded, no_path when unavailable, "
                    "no_data or not_monitored when unknown; empty otherwise.",
                },
            },
        ),
        "Link": _object(
            "A measured path between two sites.",
            {
                "id": _ID,
                "from": _ID,
                "to": _ID,
                "network": {"enum": list(NETWORKS)},
                "state": {"enum": list(LINK_STATES)},
                "since": _TIMESTAMP,
                "cause": {
                    **_nullable({"type": "string"}),
                    "description": "Diagnosis code (path_down, service_refused, loss, "
                    "upstream:<link>, ...); null while up.",
                },
                "detail": {"type": "string"},
                "flapping": {"type": "boolean"},
                "maintenance": _nullable(_ref("LinkMaintenance")),
                "depends_on": {"type": "array", "items": _ID},
                "unreachable_via": _nullable(_ID),
                "path": {
                    **_nullable({"type": "string"}),
                    "description": "While down: where the trace taken at the failure stopped "
                    "and how it differs from the last good path.",
                },
                "rtt_seconds": _nullable(_SECONDS),
                "loss": _nullable(_RATIO),
                "probes": {"type": "array", "items": _ref("Probe")},
            },
        ),
        "LinkMaintenance": _object(
            "The maintenance window covering a link now.",
            {
                "reason": {"type": "string"},
                "until": _TIMESTAMP,
            },
        ),
        "Probe": _object(
            "The last result of one probe of a link; nulls before its first round.",
            {
                "kind": {"enum": list(PROBE_KINDS)},
                "target": {"type": "string"},
                "success": _nullable({"type": "boolean"}),
                "failure": _nullable({"type": "string"}),
                "detail": {"type": "string"},
                "duration_seconds": _nullable(_SECONDS),
                "loss": _nullable(_RATIO),
                "at": _nullable(_TIMESTAMP),
            },
        ),
        "Outage": _object(
            "A link that is not up, from when, and whether anyone was paged.",
            {
                "link": _ID,
                "state": {"enum": list(LINK_STATES)},
                "since": _TIMESTAMP,
                "cause": _nullable({"type": "string"}),
                "alerted": {"type": "boolean"},
            },
        ),
        "MaintenanceWindow": _object(
            "A maintenance window active now or coming up.",
            {
                "links": {"type": "array", "items": _ID},
                "sites": {"type": "array", "items": _ID},
                "reason": {"type": "string"},
                "start": _TIMESTAMP,
                "end": _TIMESTAMP,
            },
        ),
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``/api/v1/openapi.json``."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {
            "title": "linkmon status API",
            "version": __version__,
            "description": "State of the Dukcapil WAN links one linkmon agent watches, and "
            "which offices can serve citizens online. Times are UTC.",
        },
        "paths": {
            "/api/v1/status": {
                "get": {
                    "operationId": "getStatus",
                    "summary": "Sites, links, service availability, open outages, maintenance.",
                    "responses": {
                        "200": {
                            "description": "The current status.",
                            "content": {"application/json": {"schema": _ref("Status")}},
                        }
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }


def status_schema() -> dict[str, Any]:
    """A standalone JSON Schema (2020-12) of the status document, for validators.

    The ``$ref``s point into ``components`` exactly as in the OpenAPI document, so this is the
    same schema, not a copy that could drift.
    """
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$ref": "#/components/schemas/Status",
        "components": {"schemas": _schemas()},
    }


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def shape_problems(doc: Any, limit: int = 5) -> list[str]:
    """Where a status document departs from the schema: ``links[3].since: missing``.

    For clients (``linkmon status``) that want a clear error instead of a KeyError, without
    depending on a JSON Schema library. Checks required fields, types, enums and nesting;
    unknown fields are allowed here, so an older client still reads a newer daemon.
    """
    schemas = _schemas()
    found: list[str] = []

    def visit(value: Any, schema: Schema, path: str) -> None:
        if len(found) >= limit:
            return
        if "$ref" in schema:
            visit(value, schemas[schema["$ref"].rsplit("/", 1)[1]], path)
            return
        if "anyOf" in schema:
            trials = []
            for option in schema["anyOf"]:
                before = len(found)
                visit(value, option, path)
                trials.append(found[before:])
                del found[before:]
            if all(trials):
                found.append(min(trials, key=len)[0])
            return
        where = path or "the document"
        if "enum" in schema and value not in schema["enum"]:
            found.append(f"{where}: {value!r} is not one of {', '.join(schema['enum'])}")
            return
        kind = schema.get("type")
        if kind is not None:
            wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
            if not isinstance(value, _TYPES[kind]) or wrong_bool:
                found.append(f"{where}: expected {kind}, got {type(value).__name__}")
                return
        if kind == "object":
            for name, sub in schema.get("properties", {}).items():
                if name not in value:
                    found.append(f"{path + '.' if path else ''}{name}: missing")
                else:
                    visit(value[name], sub, f"{path + '.' if path else ''}{name}")
        elif kind == "array":
            for n, item in enumerate(value):
                visit(item, schema["items"], f"{path}[{n}]")

    visit(doc, _ref("Status"), "")
    return found[:limit]
