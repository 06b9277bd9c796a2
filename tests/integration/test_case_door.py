"""Case events only through cases (issue 14 item 5): a plain ``POST /v1/messages`` of a type
only the case and consent services send, or naming a ``case_id``, is refused with a 422
``case-event-outside-case`` that says where it goes, and nothing is stored, delivered or
logged as accepted; the case service's path, for a party of the case, keeps working. Otherwise any
registered participant could put an event into another pair's case (UNTOC art. 18(13): the
request and its answers pass between the central authorities of that case)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    REQUESTED,
    VETTER,
    case_of,
    fire,
    get_case,
    open_case,
)


def _refused(api: Api, engine: Engine, env: dict[str, object], field: str) -> None:
    before = count_rows(engine, "messages")
    outbox = count_rows(engine, "outbox")
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "urn:palermo:problem:case-event-outside-case", problem
    assert problem["field"] == field, problem
    assert "case service" in problem["detail"], problem
    assert count_rows(engine, "messages") == before
    assert count_rows(engine, "outbox") == outbox
    assert count_rows(engine, "audit_events", "kind = 'message:accepted'") == 0


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
    # The requested side's inbox holds nothing from it, and the case did not move.
    assert (
        count_rows(sync_engine, "messages", "case_id = :c AND sender_id = 'de.bka'", c=case["id"])
        == 0
    )
    relay(api.settings)
    assert api.get("/v1/inbox", as_="us.officer").json()["items"] == []
    assert get_case(api, case["id"])["state"] == "DRAFT"


def test_the_case_service_path_keeps_working(api: Api, sync_engine: Engine) -> None:
    """The parties fire events through the case routes, which sign and route them."""
    case = open_case(api)
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    sent = fire(api, case["id"], "transmit", VETTER)
    assert case_of(sent)["state"] == "TRANSMITTED"
    message_id = sent["event"]["message_id"]
    where = "id = :m AND type = 'mla.event' AND case_id = :c AND recipient_id = :r"
    assert count_rows(sync_engine, "messages", where, m=message_id, c=case["id"], r=REQUESTED)
    relay(api.settings)
    items = api.get("/v1/inbox", as_="us.officer").json()["items"]
    assert [i["message"]["id"] for i in items] == [message_id]
    fire(api, case["id"], "acknowledge", HANDLER)


@pytest.mark.parametrize(
    "kind",
    [
        "mla.event",
        "fiu.event",
        "fiu.consent",
        "fiu.request",
        "fiu.response",
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
