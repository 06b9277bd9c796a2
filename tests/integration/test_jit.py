"""The joint investigation team (UNTOC art. 19; rule P21) through the HTTP API: the
agreement's reference, parties and expiry; only members open, read and exchange; the node's
timers move the team to EXPIRED at its expiry, after which exchanges are refused. Every
break is a clear 4xx naming the rule or guard and its citation, and changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_helpers import (
    FakeClock,
    call,
    case_of,
    fire,
    get_case,
    problem,
    tick,
    use_clock,
)

WORKFLOW = "jit.team"
LEAD, PARTNER, THIRD, OUTSIDER = "it.officer", "de.system", "us.officer", "nl.officer"
MEMBERS = ["it.central-authority", "de.bka", "us.central-authority"]
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def agreement(**over: Any) -> dict[str, Any]:
    """Italy, Germany and the United States set up a team for thirty days (the US is outside
    the LED area: a transfer basis is declared)."""
    data: dict[str, Any] = {
        "agreement_reference": "JIT-IT-DE-US-2026/01",
        "parties": MEMBERS,
        "expiry": (START + dt.timedelta(days=30)).isoformat(),
        "subject_matter": "Cocaine trafficking through Gioia Tauro and Hamburg.",
        "purpose": "joint_investigation",
        "legal_basis": "untoc",
        "transfer_basis": "appropriate_safeguards",
    }
    data.update(over)
    return data


def rules(p: dict[str, Any]) -> list[str]:
    assert p["type"] == "urn:palermo:problem:policy-denied", p
    assert all(r["citation"] == "UNTOC art. 19" for r in p["reasons"])
    return [r["rule"] for r in p["reasons"]]


def draft(api: Api, **over: Any) -> str:
    r = call(
        api,
        "POST",
        "/v1/cases",
        LEAD,
        json={"workflow": WORKFLOW, "counterpart": "de.bka", "request": agreement(**over)},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["workflow"], r.json()["state"]) == (WORKFLOW, "DRAFT")
    case_id: str = r.json()["id"]
    return case_id


def active(api: Api, **over: Any) -> str:
    case_id = draft(api, **over)
    opened = fire(api, case_id, "open_team", LEAD)
    assert opened["case"]["state"] == "ACTIVE"
    return case_id


def exchange(to: str, text: str = "Container MSKU 123 leaves Hamburg on Friday.") -> dict[str, Any]:
    return {"recipient": to, "subject": "shipment", "text": text}


def refused_without_change(
    api: Api,
    engine: Engine,
    case_id: str,
    event: str,
    as_: str,
    body: dict[str, Any] | None,
    status: int,
) -> dict[str, Any]:
    before = get_case(api, case_id)
    events = count_rows(engine, "case_events", "case_id = :c", c=case_id)
    messages = count_rows(engine, "messages", "case_id = :c", c=case_id)
    p = problem(api, case_id, event, as_, body, status=status)
    after = get_case(api, case_id)
    assert (after["state"], after["seq"]) == (before["state"], before["seq"])
    assert count_rows(engine, "case_events", "case_id = :c", c=case_id) == events
    assert count_rows(engine, "messages", "case_id = :c", c=case_id) == messages
    return p


# --- P21.agreement: reference, parties, expiry ------------------------------------------------


def test_a_team_opens_only_with_its_reference_parties_and_expiry(
    api: Api, sync_engine: Engine
) -> None:
    use_clock(api, FakeClock(START))
    for missing in ("agreement_reference", "expiry"):
        case_id = draft(api, **{missing: None})
        p = refused_without_change(api, sync_engine, case_id, "open_team", LEAD, None, 403)
        assert rules(p) == ["P21.agreement"]
        assert get_case(api, case_id)["state"] == "DRAFT"
        # The draft is amended as the team opens: then it opens.
        fired = fire(api, case_id, "open_team", LEAD, {"request": agreement()})
        assert fired["case"]["state"] == "ACTIVE"
        assert "P21.agreement" not in fired["event"]["policy_rules"]


def test_an_incomplete_draft_is_abandoned_by_its_opener(api: Api) -> None:
    use_clock(api, FakeClock(START))
    case_id = draft(api, expiry=None, parties=["de.bka"])
    gone = fire(api, case_id, "withdraw", LEAD, {"reason": "Agreement not signed."})
    assert gone["case"]["state"] == "WITHDRAWN"
    assert call(api, "GET", f"/v1/cases/{case_id}", PARTNER).status_code == 404


def test_an_expiry_already_past_is_refused(api: Api, sync_engine: Engine) -> None:
    use_clock(api, FakeClock(START))
    case_id = draft(api, expiry=(START - dt.timedelta(days=1)).isoformat())
    p = refused_without_change(api, sync_engine, case_id, "open_team", LEAD, None, 422)
    assert (p["guard"], p["citation"]) == ("expiry_future", "UNTOC art. 19")


# --- P21.member-sender, P21.member-recipient: only members ------------------------------------


def test_the_opener_must_be_a_party_p21_member_sender(api: Api, sync_engine: Engine) -> None:
    use_clock(api, FakeClock(START))
    case_id = draft(api, parties=["de.bka", "us.central-authority"])
    p = refused_without_change(api, sync_engine, case_id, "open_team", LEAD, None, 403)
    assert rules(p) == ["P21.member-sender"]
    # Never shared: the counterpart does not see the team.
    assert call(api, "GET", f"/v1/cases/{case_id}", PARTNER).status_code == 404


def test_the_counterpart_must_be_a_party_p21_member_recipient(
    api: Api, sync_engine: Engine
) -> None:
    use_clock(api, FakeClock(START))
    case_id = draft(api, parties=["it.central-authority", "us.central-authority"])
    p = refused_without_change(api, sync_engine, case_id, "open_team", LEAD, None, 403)
    assert rules(p) == ["P21.member-recipient"]
    assert call(api, "GET", f"/v1/cases/{case_id}", PARTNER).status_code == 404


def test_members_exchange_and_a_non_member_neither_sees_nor_receives(
    api: Api, sync_engine: Engine
) -> None:
    use_clock(api, FakeClock(START))
    case_id = active(api)
    # Both parties of the case read the team; a participant outside it does not.
    assert get_case(api, case_id, PARTNER)["state"] == "ACTIVE"
    assert call(api, "GET", f"/v1/cases/{case_id}", OUTSIDER).status_code == 404
    r = call(
        api,
        "POST",
        f"/v1/cases/{case_id}/events",
        OUTSIDER,
        json={"event": "exchange", "body": exchange("it.central-authority")},
    )
    assert r.status_code == 404, r.text

    # Either party exchanges, with the other or with a third member.
    sent = fire(api, case_id, "exchange", LEAD, exchange("de.bka"))
    assert sent["case"]["state"] == "ACTIVE"
    assert sent["event"]["details"]["recipient"] == "de.bka"
    back = fire(api, case_id, "exchange", PARTNER, exchange("it.central-authority"))
    assert back["event"]["side"] == "requested"
    third = fire(api, case_id, "exchange", LEAD, exchange("us.central-authority"))
    message_id = third["event"]["message_id"]
    r = call(api, "GET", f"/v1/messages/{message_id}", THIRD)
    assert r.status_code == 200, r.text
    assert r.json()["recipient"] == "us.central-authority"
    # The third member reads what was addressed to it (a logged consultation), and finds it in
    # its inbox; it does not read the case, of which it is no party.
    relay(api.settings)
    r = call(
        api,
        "GET",
        f"/v1/messages/{message_id}/content",
        THIRD,
        params={"justification": "reading the team's exchange"},
    )
    assert r.status_code == 200, r.text
    inbox = call(api, "GET", "/v1/inbox", THIRD).json()["items"]
    assert message_id in [item["message"]["id"] for item in inbox]
    assert call(api, "GET", f"/v1/cases/{case_id}", THIRD).status_code == 404
    # The other party sees the exchange in the team's history, not its content.
    r = call(
        api,
        "GET",
        f"/v1/messages/{message_id}/content",
        PARTNER,
        params={"justification": "reading the team's exchange"},
    )
    assert r.status_code == 404, r.text

    # An exchange to a non-member is refused by P21 and stores nothing.
    p = refused_without_change(api, sync_engine, case_id, "exchange", LEAD, exchange("nl.fiu"), 403)
    assert rules(p) == ["P21.member-recipient"]
    assert count_rows(sync_engine, "messages", "recipient_id = 'nl.fiu'") == 0


def test_a_team_event_needs_a_party_and_a_valid_body(api: Api) -> None:
    use_clock(api, FakeClock(START))
    case_id = active(api)
    # Managing the team is its lead's (the requesting side's).
    problem(api, case_id, "close_team", PARTNER, {}, status=403)
    p = problem(api, case_id, "exchange", LEAD, {"recipient": "de.bka"}, status=422)
    assert p["errors"][0]["field"] == "body.text"
    p = problem(api, case_id, "exchange", LEAD, exchange("not a participant"), status=422)
    assert p["errors"][0]["field"] == "body.recipient"
    # The node's own event is not anyone's to fire.
    problem(api, case_id, "expire_team", LEAD, None, status=403)


# --- P21.expired: the team ends at its expiry -------------------------------------------------


def test_the_timers_move_the_team_to_expired_and_exchanges_are_refused(
    api: Api, sync_engine: Engine
) -> None:
    clock = use_clock(api, FakeClock(START))
    case_id = active(api)
    tick(api, clock.advance(days=29))
    assert get_case(api, case_id)["state"] == "ACTIVE"
    fire(api, case_id, "exchange", LEAD, exchange("de.bka"))

    # Past the expiry, before the timers run: the guard refuses.
    clock.advance(days=2)
    p = refused_without_change(api, sync_engine, case_id, "exchange", LEAD, exchange("de.bka"), 409)
    assert p["guard"] == "team_in_term"

    # The timers move the team to EXPIRED, by the node's own signed event.
    tick(api, clock.now)
    case = get_case(api, case_id)
    assert case["state"] == "EXPIRED"
    last = case["timeline"][-1]
    assert (last["event"], last["side"], last["to_state"]) == ("expire_team", "system", "EXPIRED")
    assert last["node_signature"]
    assert get_case(api, case_id, PARTNER)["state"] == "EXPIRED"

    # From then on P21.expired refuses every exchange, and the refusal is on the audit log.
    refused = count_rows(sync_engine, "audit_events", "kind = 'message:refused'")
    p = refused_without_change(
        api, sync_engine, case_id, "exchange", PARTNER, exchange("it.central-authority"), 403
    )
    assert rules(p) == ["P21.expired"]
    assert count_rows(sync_engine, "audit_events", "kind = 'message:refused'") == refused + 1
    problem(api, case_id, "close_team", LEAD, {}, status=409)


def test_an_extension_moves_the_expiry_and_the_timers_follow(api: Api, sync_engine: Engine) -> None:
    clock = use_clock(api, FakeClock(START))
    case_id = active(api)
    earlier = {"expiry": (START + dt.timedelta(days=10)).isoformat()}
    p = refused_without_change(api, sync_engine, case_id, "extend_team", LEAD, earlier, 422)
    assert p["guard"] == "extends_term"
    problem(api, case_id, "extend_team", PARTNER, earlier, status=403)
    later = (START + dt.timedelta(days=60)).isoformat()
    fired = fire(api, case_id, "extend_team", LEAD, {"expiry": later, "reference": "JIT/01-A"})
    assert dt.datetime.fromisoformat(fired["event"]["details"]["expiry"]) == START + dt.timedelta(
        days=60
    )
    tick(api, clock.advance(days=45))
    assert get_case(api, case_id)["state"] == "ACTIVE"
    fire(api, case_id, "exchange", LEAD, exchange("de.bka"))
    tick(api, clock.advance(days=16))
    assert get_case(api, case_id)["state"] == "EXPIRED"


def test_a_team_closed_before_its_expiry_stays_closed(api: Api) -> None:
    clock = use_clock(api, FakeClock(START))
    case_id = active(api)
    closed = case_of(fire(api, case_id, "close_team", LEAD, {"note": "Arrests made."}))
    assert closed["state"] == "CLOSED"
    tick(api, clock.advance(days=31))
    assert get_case(api, case_id)["state"] == "CLOSED"
    problem(api, case_id, "exchange", LEAD, exchange("de.bka"), status=409)


# --- team messages only through the case service ----------------------------------------------


def test_a_plain_team_message_is_refused(api: Api, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "messages")
    env = envelope(api.world.keys["de.bka"], type="jit.message", body={"text": "hello"})
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "payload.type"
    assert "case service" in r.json()["detail"]
    assert count_rows(sync_engine, "messages") == before
