"""A NUL character (U+0000) anywhere a request reaches the database is a 4xx, the same on
both databases, and stores nothing. PostgreSQL text cannot hold NUL: before the check in
``broker.core.db.refuse_nul`` each of these was a 500 there, and SQLite stored it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine

from broker.core.db import refuse_nul
from broker.core.errors import SchemaViolation
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope

PROBLEM = "application/problem+json"


def assert_refused(response: Any) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def test_refuse_nul_names_the_parameter_and_looks_into_batches() -> None:
    refuse_nul({"name": "ok", "blob": b"\x00 bytes may hold anything", "n": 0})
    refuse_nul([("ok", 1), {"a": "tab\tand\nline breaks"}])
    with pytest.raises(SchemaViolation, match="display_name") as caught:
        refuse_nul({"id": "es.fiu", "display_name": "SEP\x00BLAC"})
    assert caught.value.extra["field"] == "display_name"
    with pytest.raises(SchemaViolation, match="NUL"):
        refuse_nul([{"a": "x"}, {"a": "y\x00"}])
    with pytest.raises(SchemaViolation, match="NUL"):
        refuse_nul(("a", "b\x00"))


def test_a_body_field(api: Api, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "participants")
    body = {"id": "es.fiu", "kind": "fiu", "display_name": "SEP\x00BLAC"}
    problem = assert_refused(api.post("/v1/participants", as_="it.admin", json=body))
    assert problem["type"] == "urn:palermo:problem:schema-violation"
    assert "display_name" in problem["detail"]
    assert count_rows(sync_engine, "participants") == before


def test_a_path_parameter(api: Api) -> None:
    assert_refused(api.get("/v1/participants/de.b%00ka", as_="it.admin"))


def test_a_query_parameter(api: Api) -> None:
    assert_refused(api.get("/v1/delivery/dead-letters?recipient=nl%00", as_="it.admin"))


def test_a_login(api: Api) -> None:
    form = {"grant_type": "password", "username": "it.off\x00icer", "password": "x" * 12}
    assert_refused(api.client.post("/v1/auth/token", data=form))


def test_a_signature_key_id(api: Api, sync_engine: Engine) -> None:
    env = envelope(api.world.keys["de.bka"])
    env["signatures"][0]["keyid"] = "k\x00"
    assert_refused(api.post("/v1/messages", as_="de.system", json=env))
    assert count_rows(sync_engine, "messages") == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/participants",
            {"id": "es.fiu", "kind": "fiu", "display_name": "SEP\aBLAC"},
            "display_name",
        ),
        ("/v1/participants/de.bka/keys/k/revoke", {"reason": "stolen\x1b[2J"}, "reason"),
    ],
)
def test_other_control_characters_in_free_text_name_the_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    """Below the database: names and reasons are shown to people and written to audit
    leaves, so the schema refuses control characters other than tab and line breaks."""
    problem = assert_refused(api.post(path, as_="it.admin", json=body))
    assert problem["status"] == 422
    assert "control character" in problem["detail"]
    assert field in problem["detail"]
