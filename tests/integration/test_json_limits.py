"""JSON from outside is limited in depth and element count wherever it is parsed
(broker/core/jsonlimits.py), and content already stored is read without a 500 and without a
consultation leaf when it cannot be served."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from broker.client import KeyFile
from broker.core import jsonlimits
from broker.envelopes import dsse
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import INTEL, LEGAL, payload, relay
from tests.integration.test_case_helpers import DRAFTER, REQUESTED, call, mla_request, open_case
from tests.integration.test_messages import assert_nothing_stored, assert_problem


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def envelope(key: KeyFile, **over: Any) -> dict[str, Any]:
    """Signed like ``broker.client.sign``, but serialised by the standard library, which
    nests deeper than orjson does (an attacker's client is not ours)."""
    return dsse.sign_envelope(json.dumps(payload(key, **over)).encode(), key.signer).to_dict()


def test_a_self_signed_body_nested_too_deep_is_refused_with_the_limit(
    api: Api, sync_engine: Engine
) -> None:
    env = envelope(api.world.keys["de.bka"], body=nested(260))
    r = api.post("/v1/messages", as_="de.system", json=env)
    problem = assert_problem(r, 422, "schema-violation")
    assert "payload.body" in str(problem["detail"])
    assert str(jsonlimits.MAX_JSON_DEPTH) in str(problem["detail"])
    assert_nothing_stored(sync_engine)


def test_a_draft_nested_too_deep_is_refused_with_the_limit(api: Api, sync_engine: Engine) -> None:
    draft = {"type": "intel.message", "recipient": "de.bka", "body": nested(300), **LEGAL, **INTEL}
    r = api.post("/v1/messages", as_="it.officer", json={"draft": draft})
    problem = assert_problem(r, 422, "schema-violation")
    assert str(jsonlimits.MAX_JSON_DEPTH) in str(problem["detail"])
    assert_nothing_stored(sync_engine)


def test_a_body_with_too_many_values_is_refused(api: Api, sync_engine: Engine) -> None:
    body = {"items": [0] * (jsonlimits.MAX_JSON_ELEMENTS + 1)}
    env = envelope(api.world.keys["de.bka"], body=body)
    r = api.post("/v1/messages", as_="de.system", json=env)
    problem = assert_problem(r, 422, "schema-violation")
    assert str(jsonlimits.MAX_JSON_ELEMENTS) in str(problem["detail"])
    assert_nothing_stored(sync_engine)


def test_a_just_deep_enough_body_is_accepted_and_served(api: Api) -> None:
    env = envelope(api.world.keys["de.bka"], body=nested(jsonlimits.MAX_JSON_DEPTH - 1))
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text
    relay(api.settings)
    r = api.get(
        f"/v1/messages/{r.json()['id']}/content",
        as_="it.officer",
        params={"justification": "assessing the vessel alert"},
    )
    assert r.status_code == 200, r.text


def test_a_case_request_nested_too_deep_is_refused(api: Api, sync_engine: Engine) -> None:
    request = mla_request(extra=nested(300))
    body = {"workflow": "mla.request", "counterpart": REQUESTED, "request": request}
    r = call(api, "POST", "/v1/cases", DRAFTER, json=body)
    assert r.status_code == 422, r.text
    assert str(jsonlimits.MAX_JSON_DEPTH) in r.text
    assert count_rows(sync_engine, "cases") == 0


def test_an_event_body_nested_too_deep_is_refused(api: Api) -> None:
    case = open_case(api)
    r = call(
        api,
        "POST",
        f"/v1/cases/{case['id']}/events",
        DRAFTER,
        json={"event": "submit_for_vetting", "body": {"note": nested(300)}},
    )
    assert r.status_code == 422, r.text
    assert str(jsonlimits.MAX_JSON_DEPTH) in r.text


def test_stored_content_too_deep_to_serve_is_a_problem_and_no_consultation(
    api: Api, sync_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A message stored before the limits existed: let it in past them, then restore them.
    with monkeypatch.context() as m:
        m.setattr(jsonlimits, "MAX_JSON_DEPTH", 1000)
        env = envelope(api.world.keys["de.bka"], body=nested(260))
        r = api.post("/v1/messages", as_="de.system", json=env)
        assert r.status_code == 202, r.text
    message_id = r.json()["id"]
    relay(api.settings)
    for who in ("it.officer", "de.system"):
        r = api.get(
            f"/v1/messages/{message_id}/content",
            as_=who,
            params={"justification": "assessing the vessel alert"},
        )
        assert_problem(r, 422, "unservable-content")
    assert count_rows(sync_engine, "audit_events", "kind = 'content:consulted'") == 0
    # The metadata still reads, and the receipt still works.
    assert api.get(f"/v1/messages/{message_id}", as_="it.officer").status_code == 200
