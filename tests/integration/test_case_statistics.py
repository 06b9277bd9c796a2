"""GET /v1/oversight/statistics: the indicators a national strategy reports on, computed from
case metadata only (issue 5, item 7)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from broker.client import sign
from tests.conftest import Api
from tests.integration.messaging_helpers import envelope, payload
from tests.integration.test_case_clocks import CLOCKS
from tests.integration.test_case_helpers import (
    DECIDER,
    DRAFTER,
    HANDLER,
    FakeClock,
    fire,
    set_clocks,
    to_transmitted,
    upload,
    use_clock,
)
from tests.integration.test_forward import FIU_DISCLOSURE, delivered


def indicator(stats: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in stats["turnaround_hours"] if t["indicator"] == name)
    return found


def test_statistics_report_turnaround_refusals_and_overdue(api: Api) -> None:
    api.settings.statistics_suppress_below = 0  # single cases: exact counts, no suppression
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    executed = to_transmitted(api)
    clock.advance(hours=24)
    fire(api, executed["id"], "acknowledge", HANDLER)
    fire(api, executed["id"], "start_assessment", HANDLER)
    clock.advance(hours=24)
    fire(api, executed["id"], "accept", HANDLER)
    fire(api, executed["id"], "assign_execution", HANDLER, {"executing_authority": "SDNY"})
    clock.advance(hours=48)
    file_id = upload(api, executed["id"], HANDLER, b"records")
    fire(api, executed["id"], "complete", HANDLER, {"evidence": [file_id]})

    refused = to_transmitted(api)
    clock.advance(hours=12)
    fire(api, refused["id"], "acknowledge", HANDLER)
    fire(api, refused["id"], "start_assessment", HANDLER)
    fire(
        api,
        refused["id"],
        "open_consultation",
        HANDLER,
        {"reason": "intended_refusal", "message": "We consider refusing."},
    )
    clock.advance(hours=12)
    fire(
        api,
        refused["id"],
        "refuse",
        DECIDER,
        {"grounds": ["essential_interests"], "reasons": "Security of the State."},
    )

    late = to_transmitted(api)
    clock.advance(days=8)  # the treaty clock asks for acknowledgement within 7 days

    assert api.get("/v1/oversight/statistics", as_=DRAFTER).status_code == 403
    r = api.get("/v1/oversight/statistics", as_="oversight")
    assert r.status_code == 200, r.text
    stats = r.json()
    receipt = indicator(stats, "mla.transmission_to_receipt")
    assert (receipt["count"], receipt["median"], receipt["p90"]) == (2, 12.0, 24.0)
    decision = indicator(stats, "mla.receipt_to_decision")
    assert (decision["count"], decision["median"], decision["p90"]) == (2, 12.0, 24.0)
    execution = indicator(stats, "mla.decision_to_execution")
    assert (execution["count"], execution["median"]) == (1, 48.0)
    assert indicator(stats, "fiu.submission_to_first_response")["median"] is None
    assert stats["refusals_by_ground"] == [
        {"workflow": "mla.request", "ground": "essential_interests", "count": 1}
    ]
    states = {(s["workflow"], s["state"]): s["count"] for s in stats["cases_by_state"]}
    assert states == {
        ("mla.request", "EXECUTED"): 1,
        ("mla.request", "REFUSED"): 1,
        ("mla.request", "TRANSMITTED"): 1,
    }
    assert stats["cases_by_parties"] == [
        {
            "workflow": "mla.request",
            "requesting": "it.central-authority",
            "requested": "us.central-authority",
            "count": 3,
        }
    ]
    assert stats["overdue_cases"] == 1
    assert late["id"] not in r.text  # aggregates only: no case ids, no content
    assert "Security of the State" not in r.text


def test_statistics_of_messages_refusals_by_rule_onward_consents_and_dead_letters(
    api: Api, sync_engine: Engine
) -> None:
    api.settings.statistics_suppress_below = 0
    key = api.world.keys["de.bka"]
    # Two messages the policy refuses (no legal basis): only their audit leaves remain.
    for _ in range(2):
        p = payload(key)
        p.pop("legal_basis")
        r = api.post("/v1/messages", as_="de.system", json=sign(key, p))
        assert r.status_code == 403, r.text
    intel = api.post("/v1/messages", as_="de.system", json=envelope(key))
    assert intel.status_code == 202, intel.text
    original = delivered(api, "nl.officer", FIU_DISCLOSURE)
    asked = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="it.officer",
        json={"recipient": "de.bka", "purpose": FIU_DISCLOSURE["purpose"], "reasons": "joint"},
    )
    assert asked.status_code == 201, asked.text
    granted = api.post(f"/v1/consents/{asked.json()['id']}/grant", as_="nl.officer", json={})
    assert granted.status_code == 200, granted.text
    with sync_engine.begin() as conn:  # as the relay leaves it after its last attempt
        conn.execute(
            text("UPDATE messages SET status = 'dead_lettered' WHERE id = :id"),
            {"id": intel.json()["id"]},
        )

    stats = api.get("/v1/oversight/statistics", as_="oversight").json()
    assert stats["refusals_by_rule"] == [{"rule": "baseline.legal-basis-missing", "count": 2}]
    types = {m["type"]: m["count"] for m in stats["messages_by_type"]}
    assert types["fiu.disclosure"] == 1
    assert types["fiu.consent"] == 2  # the request and the answer
    assert stats["dead_letters"] == 1
    assert stats["dead_letters_by_type"] == [{"type": "intel.message", "count": 1}]
    pairs = {
        (m["sender_state"], m["recipient_state"]): m["count"]
        for m in stats["messages_by_state_pair"]
    }
    assert pairs[("NL", "IT")] == 2  # the disclosure and the consent's answer
    assert pairs[("IT", "NL")] == 1  # the consent request
    onward = stats["onward_consents"]
    assert (onward["requested"], onward["granted"], onward["refused"], onward["pending"]) == (
        1,
        1,
        0,
        0,
    )
    assert onward["turnaround_hours"]["count"] == 1

    # The State filter: Germany sent the refused and the dead-lettered messages, not the rest.
    de = api.get("/v1/oversight/statistics", as_="oversight", params={"state": "de"}).json()
    assert de["refusals_by_rule"] == stats["refusals_by_rule"]
    assert "fiu.disclosure" not in {m["type"] for m in de["messages_by_type"]}
    assert de["onward_consents"]["requested"] == 0
    nl = api.get("/v1/oversight/statistics", as_="oversight", params={"state": "NL"}).json()
    assert nl["refusals_by_rule"] == []
    assert nl["onward_consents"]["granted"] == 1
    # Type and urgency select messages through their case: these have none.
    mla = api.get("/v1/oversight/statistics", as_="oversight", params={"type": "mla.request"})
    assert mla.json()["messages_by_type"] == []
    # With the default threshold, these small counts are hidden.
    api.settings.statistics_suppress_below = 5
    hidden = api.get("/v1/oversight/statistics", as_="oversight").json()
    assert hidden["dead_letters"] == "<5"
    assert hidden["onward_consents"]["turnaround_hours"] == {
        "count": "<5",
        "median": None,
        "p90": None,
    }
