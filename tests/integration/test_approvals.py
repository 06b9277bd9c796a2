"""Messages held for a supervisor's approval (issue 14 item 1): the consumer of the
``require_approval`` obligation outside the case workflows. P16.derogation (LED art. 38(2)):
a transfer outside the LED area on a specific derogation is documented and approved by a
supervisor for the situation at hand, so nothing of it leaves until a supervisor of the
sending participant, who did not submit it, approves."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from broker.client import sign
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import INTEL, LEGAL, payload, relay
from tests.integration.test_messages import assert_problem

DEROGATION: dict[str, Any] = {
    "type": "intel.message",
    "recipient": "us.central-authority",
    "body": {"summary": "courier seen at Fiumicino"},
    "transfer_basis": "derogation",
    **LEGAL,
    **INTEL,
}


def held(api: Api, as_: str = "it.officer", **over: Any) -> dict[str, Any]:
    r = api.post("/v1/messages", as_=as_, json={"draft": {**DEROGATION, **over}})
    assert r.status_code == 202, r.text
    answer: dict[str, Any] = r.json()
    assert answer["status"] == "pending_approval", answer
    return answer


def leaves(engine: Engine, kind: str, message_id: str) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k AND message_id = :m"),
            {"k": kind, "m": message_id},
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def inbox_ids(api: Api, as_: str) -> list[str]:
    r = api.get("/v1/inbox", as_=as_)
    assert r.status_code == 200, r.text
    return [i["message"]["id"] for i in r.json()["items"]]


def test_a_derogation_transfer_is_held_and_nothing_leaves(api: Api, sync_engine: Engine) -> None:
    answer = held(api)
    mid = answer["id"]
    assert count_rows(sync_engine, "outbox", "message_id = :m", m=mid) == 0
    relay(api.settings)
    assert mid not in inbox_ids(api, "us.officer")
    # The recipient does not learn it exists; the drafter sees where it stands and why.
    assert_problem(api.get(f"/v1/messages/{mid}", as_="us.officer"), 404, "not-found")
    assert_problem(
        api.get(
            f"/v1/messages/{mid}/content",
            as_="us.officer",
            params={"justification": "reading what arrived from Italy"},
        ),
        404,
        "not-found",
    )
    mine = api.get(f"/v1/messages/{mid}", as_="it.officer").json()
    assert mine["status"] == "pending_approval"
    assert mine["approval"]["status"] == "pending"
    assert mine["approval"]["rules"] == ["P16.derogation"]
    (leaf,) = leaves(sync_engine, "message:held", mid)
    assert leaf["held_for_approval"] == ["P16.derogation"]
    assert not leaves(sync_engine, "message:accepted", mid)


def test_a_supervisor_approves_and_the_message_is_delivered(api: Api, sync_engine: Engine) -> None:
    mid = held(api)["id"]
    queue = api.get("/v1/approvals", as_="it.supervisor").json()["items"]
    assert [i["message"]["id"] for i in queue] == [mid]
    assert queue[0]["drafted_by_you"] is False
    assert queue[0]["approval"]["texts"], queue
    r = api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    assert r.json()["approval"]["status"] == "approved"
    assert api.get("/v1/approvals", as_="it.supervisor").json()["items"] == []
    relay(api.settings)
    assert mid in inbox_ids(api, "us.officer")
    assert api.get(f"/v1/messages/{mid}", as_="us.officer").json()["status"] == "delivered"
    (leaf,) = leaves(sync_engine, "message:approved", mid)
    assert leaf["actor"]["account"] == api.world.account_ids["it.supervisor"]
    assert leaf["approval_rules"] == ["P16.derogation"]
    # Decided once.
    again = api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor")
    assert_problem(again, 409, "invalid-state")


def test_a_rejection_keeps_it_from_leaving_and_the_drafter_sees_why(
    api: Api, sync_engine: Engine
) -> None:
    mid = held(api)["id"]
    reason = "no derogation of LED art. 38(1) fits: ask for appropriate safeguards"
    r = api.post(f"/v1/approvals/{mid}/reject", as_="it.supervisor", json={"reason": reason})
    assert r.status_code == 200, r.text
    shown = api.get(f"/v1/messages/{mid}", as_="it.officer").json()
    assert shown["status"] == "rejected"
    assert shown["approval"] == {**shown["approval"], "status": "rejected", "reason": reason}
    relay(api.settings)
    assert mid not in inbox_ids(api, "us.officer")
    assert count_rows(sync_engine, "outbox", "message_id = :m", m=mid) == 0
    (leaf,) = leaves(sync_engine, "message:rejected", mid)
    assert "reason" not in leaf
    assert "reason_commitment" in leaf
    assert_problem(
        api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor"), 409, "invalid-state"
    )


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x", "extra": 1}, {"reason": 3}])
def test_a_rejection_without_reasons_is_refused(api: Api, body: dict[str, Any]) -> None:
    mid = held(api)["id"]
    r = api.post(f"/v1/approvals/{mid}/reject", as_="it.supervisor", json=body)
    assert_problem(r, 422, "schema-violation")
    assert api.get(f"/v1/messages/{mid}", as_="it.officer").json()["status"] == "pending_approval"


def test_a_blank_reason_is_refused(api: Api) -> None:
    mid = held(api)["id"]
    r = api.post(f"/v1/approvals/{mid}/reject", as_="it.supervisor", json={"reason": "  \n "})
    assert_problem(r, 422, "schema-violation")


@pytest.mark.parametrize("who", ["it.officer", "it.admin", "it.system", "oversight"])
def test_only_a_supervisor_decides(api: Api, who: str) -> None:
    mid = held(api)["id"]
    assert_problem(api.get("/v1/approvals", as_=who), 403, "forbidden")
    assert_problem(api.post(f"/v1/approvals/{mid}/approve", as_=who), 403, "forbidden")
    r = api.post(f"/v1/approvals/{mid}/reject", as_=who, json={"reason": "not mine to send"})
    assert_problem(r, 403, "forbidden")
    assert api.get(f"/v1/messages/{mid}", as_="it.officer").json()["status"] == "pending_approval"


@pytest.mark.parametrize("who", ["us.supervisor", "nl.supervisor"])
def test_a_supervisor_of_another_participant_sees_nothing(api: Api, who: str) -> None:
    mid = held(api)["id"]
    assert api.get("/v1/approvals", as_=who).json()["items"] == []
    assert_problem(api.post(f"/v1/approvals/{mid}/approve", as_=who), 404, "not-found")
    r = api.post(f"/v1/approvals/{mid}/reject", as_=who, json={"reason": "looks wrong"})
    assert_problem(r, 404, "not-found")
    assert api.get(f"/v1/messages/{mid}", as_="it.officer").json()["status"] == "pending_approval"


def test_the_drafter_may_not_approve_their_own_even_as_a_supervisor(api: Api) -> None:
    mid = held(api, as_="it.supervisor")["id"]
    queue = api.get("/v1/approvals", as_="it.supervisor").json()["items"]
    assert [(i["message"]["id"], i["drafted_by_you"]) for i in queue] == [(mid, True)]
    assert_problem(api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor"), 403, "forbidden")
    r = api.post(f"/v1/approvals/{mid}/reject", as_="it.supervisor", json={"reason": "mine"})
    assert_problem(r, 403, "forbidden")
    assert api.get(f"/v1/messages/{mid}", as_="it.officer").json()["status"] == "pending_approval"


def test_an_unknown_or_malformed_id_is_not_found(api: Api) -> None:
    for mid in ("not-a-uuid", "01a24303-4048-733f-8613-9e71075f2721"):
        assert_problem(
            api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor"), 404, "not-found"
        )


def test_a_system_submission_is_held_the_same_way(api: Api) -> None:
    """Machine to machine: a self-signed envelope of an agency system is held just as a
    person's draft is, and a supervisor of its participant releases it."""
    key = api.world.keys["de.bka"]
    env = sign(key, payload(key, recipient="us.central-authority", transfer_basis="derogation"))
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending_approval"
    mid = r.json()["id"]
    # The same envelope again: the same answer, still held.
    again = api.post("/v1/messages", as_="de.system", json=env)
    assert again.status_code == 200
    assert again.json()["status"] == "pending_approval"
    relay(api.settings)
    assert mid not in inbox_ids(api, "us.officer")
    assert api.get(f"/v1/messages/{mid}", as_="de.system").json()["approval"]["status"] == "pending"
    # The Italian system's draft, released by an Italian supervisor.
    sys_mid = held(api, as_="it.system")["id"]
    r = api.post(f"/v1/approvals/{sys_mid}/approve", as_="it.supervisor")
    assert r.status_code == 200, r.text
    relay(api.settings)
    assert sys_mid in inbox_ids(api, "us.officer")


def test_a_transfer_on_safeguards_is_not_held(api: Api) -> None:
    r = api.post(
        "/v1/messages",
        as_="it.officer",
        json={"draft": {**DEROGATION, "transfer_basis": "appropriate_safeguards"}},
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    assert api.get(f"/v1/messages/{r.json()['id']}", as_="it.officer").json()["approval"] is None


def test_a_forward_on_a_derogation_is_held(api: Api) -> None:
    """An onward transfer needs its own decision (P16): with the originator's consent on
    record, a forward on a derogation is held for a supervisor like a submission."""
    key = api.world.keys["de.bka"]
    sent = api.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
    assert sent.status_code == 202, sent.text
    original = sent.json()["id"]
    relay(api.settings)
    asked = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="it.officer",
        json={"recipient": "us.central-authority", "purpose": LEGAL["purpose"]},
    )
    assert asked.status_code == 201, asked.text
    relay(api.settings)
    granted = api.post(f"/v1/consents/{asked.json()['id']}/grant", as_="de.system", json={})
    assert granted.status_code == 200, granted.text
    draft = {"recipient": "us.central-authority", "transfer_basis": "derogation"}
    r = api.post(f"/v1/messages/{original}/forward", as_="it.officer", json={"draft": draft})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending_approval"
    relay(api.settings)
    assert r.json()["id"] not in inbox_ids(api, "us.officer")
    ok = api.post(f"/v1/approvals/{r.json()['id']}/approve", as_="it.supervisor")
    assert ok.status_code == 200, ok.text
    relay(api.settings)
    assert r.json()["id"] in inbox_ids(api, "us.officer")


def test_the_recipient_sees_no_audit_entry_until_the_approval(api: Api) -> None:
    """Held, the message is the sender's alone in the log too; once released, its delivery
    is both parties' as any message's is."""
    from tests.integration.audit_helpers import sequence
    from tests.integration.test_audit_log import _kinds

    mid = held(api)["id"]
    sequence(api.settings)
    assert ("message:held", mid) in _kinds(api, "it.officer")
    assert [k for k, m in _kinds(api, "us.officer") if m == mid] == []
    r = api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor")
    assert r.status_code == 200, r.text
    relay(api.settings)
    sequence(api.settings)
    assert [k for k, m in _kinds(api, "us.officer") if m == mid] == ["message:delivered"]
    mine = [k for k, m in _kinds(api, "it.officer") if m == mid]
    assert mine == ["message:held", "message:approved", "message:delivered"]


def test_a_held_consent_answer_does_not_count_until_approved(api: Api) -> None:
    """A consent given in an answer that is held for approval (it leaves the LED area on a
    derogation) has not been given yet: the material stays locked (P18) until a supervisor
    of the provider releases the answer."""
    from tests.integration.test_forward import FIU_DISCLOSURE, delivered, forward

    to_us = {
        **FIU_DISCLOSURE,
        "recipient": "us.central-authority",
        "transfer_basis": "appropriate_safeguards",
    }
    original = delivered(api, "nl.officer", to_us)
    asked = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="us.officer",
        json={"recipient": "de.bka", "purpose": FIU_DISCLOSURE["purpose"]},
    )
    assert asked.status_code == 201, asked.text
    relay(api.settings)
    grant = f"/v1/consents/{asked.json()['id']}/grant"
    granted = api.post(grant, as_="nl.officer", json={"transfer_basis": "derogation"})
    assert granted.status_code == 200, granted.text
    answer_id = granted.json()["answer_message_id"]
    assert api.get(f"/v1/messages/{answer_id}", as_="nl.officer").json()["status"] == (
        "pending_approval"
    )
    early = forward(api, original, as_="us.officer", recipient="de.bka")
    assert early.status_code == 403, early.text
    assert "P18.named-recipients" in {r["rule"] for r in early.json()["reasons"]}
    ok = api.post(f"/v1/approvals/{answer_id}/approve", as_="nl.supervisor")
    assert ok.status_code == 200, ok.text
    later = forward(api, original, as_="us.officer", recipient="de.bka")
    assert later.status_code == 202, later.text


def test_the_reasons_of_a_rejection_go_with_the_content(api: Api, sync_engine: Engine) -> None:
    """At the end of its retention (P17) a rejected message is erased like any other, and
    the supervisor's reasons (free text) with it; its status and decision remain."""
    import datetime as dt

    from tests.integration.test_retention import erase_at

    mid = held(api)["id"]
    reason = "no derogation of LED art. 38(1) fits"
    r = api.post(f"/v1/approvals/{mid}/reject", as_="it.supervisor", json={"reason": reason})
    assert r.status_code == 200, r.text
    until = dt.datetime.fromisoformat(r.json()["retention_until"])
    assert mid not in erase_at(api, until - dt.timedelta(days=1)).messages
    assert mid in erase_at(api, until + dt.timedelta(seconds=1)).messages
    shown = api.get(f"/v1/messages/{mid}", as_="it.officer").json()
    assert shown["erased_at"]
    assert shown["status"] == "rejected"
    assert shown["approval"]["status"] == "rejected"
    assert shown["approval"]["reason"] is None
    assert count_rows(sync_engine, "message_approvals", "reason IS NOT NULL") == 0


def test_the_recipient_cannot_export_a_held_message(api: Api) -> None:
    """The content key of a held message is sealed to its recipient at acceptance; the
    recipient's own export leaves it out until the approval releases it."""
    why = {"justification": "exporting our records for the archive"}
    mid = held(api)["id"]
    rejected = held(api)["id"]
    r = api.post(f"/v1/approvals/{rejected}/reject", as_="it.supervisor", json={"reason": "no"})
    assert r.status_code == 200, r.text

    def exported() -> list[str]:
        page = api.get("/v1/messages/export", as_="us.officer", params=why)
        assert page.status_code == 200, page.text
        return [i["id"] for i in page.json()["items"]]

    assert mid not in exported()
    assert rejected not in exported()
    assert api.post(f"/v1/approvals/{mid}/approve", as_="it.supervisor").status_code == 200
    assert mid not in exported()  # not yet delivered either
    relay(api.settings)
    assert mid in exported()
    assert rejected not in exported()
    mine = api.get("/v1/messages/export", as_="it.officer", params=why).json()["items"]
    assert {mid, rejected} <= {i["id"] for i in mine}  # the sender's own copies


def test_a_consent_request_that_needs_approval_is_refused_not_held(
    api: Api, sync_engine: Engine
) -> None:
    """A consent request is the provider's to answer as soon as it is recorded, so it cannot
    wait for a supervisor: one on a derogation is refused (fail closed), nothing stored."""
    from tests.integration.test_forward import delivered

    original = delivered(
        api,
        "us.officer",
        {
            "type": "intel.message",
            "recipient": "it.central-authority",
            "body": {"summary": "courier seen at JFK"},
            **LEGAL,
            **INTEL,
        },
    )
    before = count_rows(sync_engine, "messages")
    r = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="it.officer",
        json={
            "recipient": "de.bka",
            "purpose": LEGAL["purpose"],
            "transfer_basis": "derogation",
        },
    )
    assert_problem(r, 403, "policy-denied")
    assert [x["rule"] for x in r.json()["reasons"]] == ["P16.derogation"]
    assert count_rows(sync_engine, "consents") == 0
    assert count_rows(sync_engine, "messages") == before
    assert count_rows(sync_engine, "message_approvals") == 0
