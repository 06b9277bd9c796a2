"""Case events only through cases (issue 14 item 5): a plain ``POST /v1/messages`` of a type
only the case and consent services send, or naming a ``case_id``, is refused with a 422 that
says where it goes, and nothing is stored, delivered or logged as accepted. Otherwise any
registered participant could put an event into another pair's case (UNTOC art. 18(13): the
request and its answers pass between the central authorities of that case)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope
from tests.integration.test_case_helpers import REQUESTED, open_case


def _refused(api: Api, engine: Engine, env: dict[str, object], field: str) -> None:
    before = count_rows(engine, "messages")
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("schema-violation"), problem
    assert problem["field"] == field, problem
    assert "case service" in problem["detail"], problem
    assert count_rows(engine, "messages") == before


def test_an_event_naming_another_pairs_case_is_refused(api: Api, sync_engine: Engine) -> None:
    case = open_case(api)
    key = api.world.keys["de.bka"]
    env = envelope(
        key,
        recipient=REQUESTED,
        type="mla.event",
        case_id=case["id"],
        body={"event": "refuse", "grounds": "invented"},
    )
    _refused(api, sync_engine, env, "payload.case_id")
    # The requested side's inbox holds nothing from it.
    assert (
        count_rows(sync_engine, "messages", "case_id = :c AND sender_id = 'de.bka'", c=case["id"])
        == 0
    )


@pytest.mark.parametrize(
    "kind",
    [
        "mla.event",
        "fiu.event",
        "fiu.consent",
        "jit.event",
        "jit.message",
        "extradition.event",
        "extradition.request",
    ],
)
def test_a_case_only_type_without_a_case_is_refused(
    api: Api, sync_engine: Engine, kind: str
) -> None:
    env = envelope(api.world.keys["de.bka"], type=kind, body={"event": "grant_consent"})
    _refused(api, sync_engine, env, "payload.type")


def test_a_plain_message_still_passes(api: Api) -> None:
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert r.status_code == 202, r.text
