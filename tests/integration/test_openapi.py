"""The OpenAPI document (issue 12): problem+json answers for every operation and the request
bodies of the routes that read their body themselves, so a fuzzer reaches them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_CONTENT = {"application/problem+json": {"schema": PROBLEM_REF}}


def _doc(api: Api) -> dict[str, Any]:
    r = api.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_every_operation_declares_problem_answers(api: Api) -> None:
    doc = _doc(api)
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "4XX" in responses, (method, path)
            for code, answer in responses.items():
                if code.startswith("4"):
                    assert answer["content"] == {
                        "application/problem+json": {"schema": PROBLEM_REF}
                    }
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_a_validation_error_is_the_declared_problem(api: Api) -> None:
    r = api.get("/v1/inbox?cursor=x", as_="it.officer")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status"} <= set(r.json())


def test_self_read_bodies_are_described(api: Api) -> None:
    paths = _doc(api)["paths"]
    envelope = {"$ref": "#/components/schemas/Envelope"}
    either = {"oneOf": [envelope, {"$ref": "#/components/schemas/DraftSubmission"}]}
    expected = {
        "/v1/messages": (either, True),
        "/v1/messages/{message_id}/forward": (either, True),
        "/v1/messages/{message_id}/receipt": (envelope, False),
        "/v1/federation/envelopes": (envelope, True),
        "/v1/federation/batch": ({"$ref": "#/components/schemas/FederationBatch"}, True),
    }
    for path, (schema, required) in expected.items():
        body = paths[path]["post"]["requestBody"]
        assert body["required"] is required, path
        assert body["content"]["application/json"]["schema"] == schema, path
