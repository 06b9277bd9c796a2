"""The OpenAPI document: what FastAPI generates, completed with what it cannot see.

- Every error is RFC 9457 ``application/problem+json``: a ``Problem`` schema, and for every
  operation a ``4XX`` answer of that type (the 422 of request validation too, which the node
  answers as a problem, not as FastAPI's ``HTTPValidationError``).
- The routes that read their body themselves (to check a signature over its exact bytes)
  declare it: ``POST /v1/messages`` and ``/forward`` (a DSSE envelope or a draft),
  ``/receipt`` (a receipt envelope, or empty), ``/v1/federation/envelopes`` (an envelope),
  ``/v1/federation/batch`` (envelopes, up to the node's batch size).
  So a reader, and a fuzzer, knows what they take.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; members beyond these (field, limit...) may follow.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:palermo:problem:schema-violation"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "Envelope",
    "description": "A DSSE envelope (payload base64, signatures by registered keys).",
    "type": "object",
    "required": ["payloadType", "payload", "signatures"],
    "properties": {
        "payloadType": {"type": "string"},
        "payload": {"type": "string", "contentEncoding": "base64"},
        "signatures": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["keyid", "sig"],
                "properties": {"keyid": {"type": "string"}, "sig": {"type": "string"}},
            },
        },
    },
}
DRAFT_SCHEMA: dict[str, Any] = {
    "title": "DraftSubmission",
    "description": "A payload for the node to sign with the caller's custodial key.",
    "type": "object",
    "required": ["draft"],
    "properties": {"draft": {"type": "object"}},
}
FEDERATION_BATCH_SCHEMA: dict[str, Any] = {
    "title": "FederationBatch",
    "description": "Forwarded envelopes (the sender's signature, then the forwarding node's), "
    "at most PALERMO_FEDERATION_BATCH_MAX_ENVELOPES (default 100) and "
    "PALERMO_FEDERATION_BATCH_MAX_BYTES in all.",
    "type": "object",
    "required": ["envelopes"],
    "additionalProperties": False,
    "properties": {
        "envelopes": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/Envelope"},
        }
    },
}
_ENVELOPE = {"$ref": "#/components/schemas/Envelope"}
_DRAFT = {"$ref": "#/components/schemas/DraftSubmission"}
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/messages"): {"required": True, "schema": {"oneOf": [_ENVELOPE, _DRAFT]}},
    ("post", "/v1/messages/{message_id}/forward"): {
        "required": True,
        "schema": {"oneOf": [_ENVELOPE, _DRAFT]},
    },
    ("post", "/v1/messages/{message_id}/receipt"): {"required": False, "schema": _ENVELOPE},
    ("post", "/v1/federation/envelopes"): {"required": True, "schema": _ENVELOPE},
    ("post", "/v1/federation/batch"): {
        "required": True,
        "schema": {"$ref": "#/components/schemas/FederationBatch"},
    },
}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem answers and the self-read request bodies to ``document``."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["Envelope"] = ENVELOPE_SCHEMA
    schemas["DraftSubmission"] = DRAFT_SCHEMA
    schemas["FederationBatch"] = FEDERATION_BATCH_SCHEMA
    problem = {
        "description": "the request was refused: RFC 9457 problem details",
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            for code in [c for c in responses if c.startswith("4")]:
                responses[code] = {**problem, "description": responses[code]["description"]}
            responses["4XX"] = problem
            body = REQUEST_BODIES.get((method, path))
            if body is not None:
                op["requestBody"] = {
                    "required": body["required"],
                    "content": {"application/json": {"schema": body["schema"]}},
                }
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
