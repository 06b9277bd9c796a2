"""Police information requests under Directive (EU) 2023/977 through the HTTP API: the
intel.request -> intel.response workflow, its art. 5(1) time limits (8 hours urgent and
directly accessible, 3 days urgent and indirectly accessible, 7 days otherwise), and the
reminder and escalation its clock raises, delivered to the parties' inboxes as node-signed
notice messages. Time is a FakeClock, never slept on."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from broker.core.context import node_context
from broker.envelopes import dsse
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import (
    FakeClock,
    call,
    fire,
    get_case,
    open_case,
    register_partner,
    tick,
    use_clock,
)
from tests.integration.web_helpers import Browser

IT, NL = "it.police", "nl.police"
ASKER, ASKER_HEAD = "it.investigator", "it.police-head"
ANSWERER, ANSWERER_HEAD = "nl.spoc", "nl.spoc-head"  # the Dutch Single Point of Contact


@pytest.fixture
def police(api: Api) -> None:
    register_partner(api, IT, "police", {ASKER: "officer", ASKER_HEAD: "supervisor"})
    register_partner(api, NL, "police", {ANSWERER: "officer", ANSWERER_HEAD: "supervisor"})


def intel_request(**over: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "facts": "A lorry registered in Rotterdam carried 300 kg of cocaine to Genoa.",
        "reasons": "The driver's associates are sought before the next shipment.",
        "information_sought": "The registered keeper of the lorry NL-12-ABC.",
        "purpose": "prevention_of_crime",
        "legal_basis": "eu-2023-977",
        "urgent": True,
        "information_access": "direct",
        "subjects": [{"ref": "p1", "category": "suspect", "identity": "the keeper"}],
    }
    request.update(over)
    return {k: v for k, v in request.items() if v is not None}


def submitted(api: Api, **over: Any) -> dict[str, Any]:
    case = open_case(
        api, ASKER, workflow="intel.request", counterpart=NL, request=intel_request(**over)
    )
    fire(api, case["id"], "submit", ASKER)
    return case


def provide(case: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in case["deadlines"] if d["name"] == "provide")
    return found


def notices_in_inbox(api: Api, who: str, case_id: str) -> list[dict[str, Any]]:
    """The notice messages of ``case_id`` in ``who``'s inbox, each with its payload, read as
    a person reads it (a logged consultation)."""
    relay(api.settings)
    r = call(api, "GET", "/v1/inbox", who, params={"limit": 1000})
    assert r.status_code == 200, r.text
    out = []
    for item in r.json()["items"]:
        m = item["message"]
        if m["type"] != "notice" or m["case_id"] != case_id:
            continue
        r = call(
            api,
            "GET",
            f"/v1/messages/{m['id']}/content",
            who,
            params={"justification": "reading the node's notice on the request"},
        )
        assert r.status_code == 200, r.text
        out.append({"message": m, **r.json()})
    return out


def test_an_urgent_request_for_directly_accessible_information_runs_eight_hours(
    api: Api, police: None, sync_engine: Engine
) -> None:
    clock = use_clock(api, FakeClock())
    case = submitted(api)
    start = clock.now
    seen = get_case(api, case["id"], ANSWERER)
    deadline = provide(seen)
    assert deadline["status"] == "running"
    assert deadline["source"] == "eu-2023-977-urgent-direct"
    assert deadline["citation"] == "Directive (EU) 2023/977 art. 5(1)(a)"
    assert dt.datetime.fromisoformat(deadline["due_at"]) == start + dt.timedelta(hours=8)
    assert seen["urgent"] is True
    assert seen["information_access"] == "direct"

    # The reminder: two hours before the time limit, to the side that must answer.
    assert tick(api, clock.advance(hours=5, minutes=59)) == 0
    assert tick(api, clock.advance(minutes=1)) == 1
    assert tick(api, clock.now) == 0  # a timer that runs again raises nothing more
    reminders = notices_in_inbox(api, ANSWERER, case["id"])
    assert [n["payload"]["body"]["notice"] for n in reminders] == ["reminder"]
    assert notices_in_inbox(api, ASKER, case["id"]) == []
    reminder = reminders[0]
    body = reminder["payload"]["body"]
    assert body["case"]["id"] == case["id"]
    assert body["case"]["workflow"] == "intel.request"
    assert body["rule"] == {"id": "P10", "citation": "Directive (EU) 2023/977 art. 5(1)(a)"}
    assert dt.datetime.fromisoformat(body["due_at"]) == start + dt.timedelta(hours=8)
    assert body["details"]["deadline"] == "provide"
    assert body["issued_by"] == api.settings.node_id
    assert reminder["message"]["urgent"] is True  # a notice of an urgent request
    assert reminder["message"]["status"] == "delivered"
    # Signed by the node's key alone, and audited as an accepted message.
    envelope = reminder["envelope"]
    node = node_context(api.settings)
    assert [s["keyid"] for s in envelope["signatures"]] == [node.signer.key_id]
    unsafe = dsse.parse_envelope(envelope)
    dsse.verify_signature(unsafe, 0, node.signer.public_key)
    assert orjson.loads(base64.b64decode(envelope["payload"])) == reminder["payload"]
    leaves = f"kind = 'message:accepted' AND message_id = '{reminder['message']['id']}'"
    assert count_rows(sync_engine, "audit_events", leaves) == 1

    # The escalation: once the time limit passed, to both sides.
    assert tick(api, clock.advance(hours=2, minutes=1)) == 1
    assert tick(api, clock.advance(hours=1)) == 0
    answerer = [n["payload"]["body"]["notice"] for n in notices_in_inbox(api, ANSWERER, case["id"])]
    asker = notices_in_inbox(api, ASKER, case["id"])
    assert answerer == ["reminder", "escalation"]
    assert [n["payload"]["body"]["notice"] for n in asker] == ["escalation"]
    assert provide(get_case(api, case["id"], ASKER))["status"] == "overdue"

    # The response closes the clock: late, so missed, and no timer raises anything more.
    fire(
        api,
        case["id"],
        "respond",
        ANSWERER,
        {
            "kind": "full",
            "summary": "Keeper: J. Smit.",
            "permitted_purposes": ["prevention_of_crime"],
        },
    )
    closed = provide(get_case(api, case["id"], ASKER))
    assert closed["status"] == "missed"
    assert closed["stopped_at"] is not None
    assert tick(api, clock.advance(days=30)) == 0
    assert len(notices_in_inbox(api, ANSWERER, case["id"])) == 2


def test_a_response_in_time_meets_the_limit_and_stops_the_escalation(
    api: Api, police: None
) -> None:
    clock = use_clock(api, FakeClock())
    case = submitted(api)
    clock.advance(hours=3)
    fired = fire(
        api,
        case["id"],
        "respond",
        ANSWERER,
        {
            "kind": "full",
            "summary": "Keeper: J. Smit.",
            "permitted_purposes": ["prevention_of_crime"],
        },
    )
    assert fired["case"]["state"] == "RESPONDED"
    assert provide(get_case(api, case["id"], ASKER))["status"] == "met"
    assert tick(api, clock.advance(hours=10)) == 0
    assert notices_in_inbox(api, ANSWERER, case["id"]) == []
    assert notices_in_inbox(api, ASKER, case["id"]) == []
    # The response reached the requesting side as an intel.response.
    relay(api.settings)
    r = call(api, "GET", "/v1/inbox", ASKER)
    types = [
        i["message"]["type"] for i in r.json()["items"] if i["message"]["case_id"] == case["id"]
    ]
    assert types == ["intel.response"]


@pytest.mark.parametrize(
    ("over", "source", "limit", "citation"),
    [
        (
            {"information_access": "indirect"},
            "eu-2023-977-urgent-indirect",
            dt.timedelta(days=3),
            "Directive (EU) 2023/977 art. 5(1)(b)",
        ),
        (
            {"urgent": False, "information_access": None},
            "eu-2023-977",
            dt.timedelta(days=7),
            "Directive (EU) 2023/977 art. 5(1)(c)",
        ),
        (
            {"urgent": False, "information_access": "direct"},
            "eu-2023-977",
            dt.timedelta(days=7),
            "Directive (EU) 2023/977 art. 5(1)(c)",
        ),
    ],
)
def test_the_other_time_limits_of_article_5(
    api: Api,
    police: None,
    over: dict[str, Any],
    source: str,
    limit: dt.timedelta,
    citation: str,
) -> None:
    clock = use_clock(api, FakeClock())
    case = submitted(api, **over)
    deadlines = get_case(api, case["id"], ANSWERER)["deadlines"]
    assert [(d["name"], d["source"], d["citation"]) for d in deadlines] == [
        ("provide", source, citation)
    ]
    assert dt.datetime.fromisoformat(deadlines[0]["due_at"]) == clock.now + limit


def test_an_urgent_request_must_say_how_accessible_the_information_is(
    api: Api, police: None, sync_engine: Engine
) -> None:
    before = count_rows(sync_engine, "cases")
    r = call(
        api,
        "POST",
        "/v1/cases",
        ASKER,
        json={
            "workflow": "intel.request",
            "counterpart": NL,
            "request": intel_request(information_access=None),
        },
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in problem["errors"]] == ["request.information_access"]
    assert "art. 5(1)" in problem["detail"]
    r = call(
        api,
        "POST",
        "/v1/cases",
        ASKER,
        json={
            "workflow": "intel.request",
            "counterpart": NL,
            "request": intel_request(information_access="somewhere"),
        },
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["request.information_access"]
    assert count_rows(sync_engine, "cases") == before  # nothing half-stored


def test_who_may_fire_what(api: Api, police: None) -> None:
    use_clock(api, FakeClock())
    case = open_case(api, ASKER, workflow="intel.request", counterpart=NL, request=intel_request())
    # The requested side sees nothing of a draft; a third participant never sees the case.
    assert call(api, "GET", f"/v1/cases/{case['id']}", ANSWERER).status_code == 404
    assert call(api, "GET", f"/v1/cases/{case['id']}", "nl.officer").status_code == 404
    fire(api, case["id"], "submit", ASKER)
    # Only the requested side answers, and only its supervisor refuses (art. 6).
    fire(api, case["id"], "respond", ASKER, {"kind": "full", "permitted_purposes": ["x"]}, 403)
    fire(api, case["id"], "refuse", ANSWERER, {"reasons": "Not held."}, 403)
    problem = fire(api, case["id"], "refuse", ANSWERER_HEAD, {}, 422)
    assert [e["field"] for e in problem["errors"]] == ["body.reasons"], problem
    refused = fire(api, case["id"], "refuse", ANSWERER_HEAD, {"reasons": "Not held by us."})
    assert refused["case"]["state"] == "REFUSED"
    assert provide(get_case(api, case["id"], ASKER))["status"] == "met"


def test_a_third_party_cannot_read_a_notice(api: Api, police: None) -> None:
    clock = use_clock(api, FakeClock())
    case = submitted(api)
    assert tick(api, clock.advance(hours=6)) == 1
    notice = notices_in_inbox(api, ANSWERER, case["id"])[0]["message"]
    for who in (ASKER, "nl.officer", "us.officer"):
        r = call(api, "GET", f"/v1/messages/{notice['id']}", who)
        assert r.status_code == 404, (who, r.text)


def test_the_case_page_shows_the_time_limit_and_notices_are_not_sent_items(
    api: Api, police: None
) -> None:
    clock = use_clock(api, FakeClock())
    case = submitted(api)
    assert tick(api, clock.advance(hours=6)) == 1
    assert len(notices_in_inbox(api, ANSWERER, case["id"])) == 1
    # The node sent the notice, not the participant: its sent lists do not show it.
    r = call(api, "GET", "/v1/messages", ANSWERER, params={"limit": 1000})
    assert r.status_code == 200, r.text
    assert [m["type"] for m in r.json()["items"]] == []
    browser = Browser(api.client)
    browser.sign_in(ANSWERER)
    assert "/messages/" not in browser.get("/sent").text.partition("<main")[2]
    page = browser.get(f"/cases/{case['id']}")
    assert page.status_code == 200, page.text
    assert "Directive (EU) 2023/977 art. 5(1)(a)" in page.text
    assert "provide the requested information" in page.text
