"""End to end through the HTTP API (issue 5, item 9): a full MLA request between two central
authorities, and an FIU exchange with a consent refused and then granted. Everyone logs in
with the password grant; messages reach the other side through the relay and its inbox."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Engine

from tests.conftest import PASSWORD, Api, count_rows
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import (
    TOKENS,
    call,
    event_payload,
    mla_request,
    register_partner,
)
from tests.integration.test_fiu import disclosure


def login(api: Api, *logins: str) -> None:
    for name in logins:
        r = api.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": name, "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        TOKENS[f"pw:{name}"] = r.json()["access_token"]


def act(api: Api, who: str, case_id: str, event: str, body: dict[str, Any] | None = None) -> Any:
    r = call(
        api,
        "POST",
        f"/v1/cases/{case_id}/events",
        f"pw:{who}",
        json={"event": event, "body": body or {}},
    )
    assert r.status_code == 201, (who, event, r.text)
    return r.json()


def inbox_types(api: Api, who: str) -> list[tuple[str, str]]:
    relay(api.settings)
    items = call(api, "GET", "/v1/inbox", f"pw:{who}").json()["items"]
    out = []
    for item in items:
        content = call(
            api,
            "GET",
            f"/v1/messages/{item['message']['id']}/content",
            f"pw:{who}",
            params={"justification": "handling the case"},
        ).json()
        out.append((item["message"]["type"], content["payload"]["body"].get("event", "")))
    return out


def test_mla_request_from_draft_to_closure(api: Api, sync_engine: Engine) -> None:
    login(api, "it.officer", "it.supervisor", "us.officer", "us.supervisor")
    # Draft: the prosecutor's request is incomplete; the central authority returns it.
    incomplete = mla_request(assistance_sought=None)
    r = call(
        api,
        "POST",
        "/v1/cases",
        "pw:it.officer",
        json={
            "workflow": "mla.request",
            "counterpart": "us.central-authority",
            "request": incomplete,
        },
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    denied = call(
        api,
        "POST",
        f"/v1/cases/{case_id}/events",
        "pw:it.officer",
        json={"event": "submit_for_vetting"},
    )
    assert denied.status_code == 403
    assert denied.json()["reasons"][0]["rule"] == "P1.fields.d"
    act(api, "it.officer", case_id, "submit_for_vetting", {"request": mla_request()})
    act(
        api,
        "it.supervisor",
        case_id,
        "return_to_drafter",
        {"comments": "State the procedure the US should follow."},
    )
    act(
        api,
        "it.officer",
        case_id,
        "submit_for_vetting",
        {"request": mla_request(procedure="Certified copies under the business-records rule")},
    )
    sent = act(api, "it.supervisor", case_id, "transmit")
    assert sent["case"]["state"] == "TRANSMITTED"

    # The requested central authority receives it in its inbox, reads it, and acknowledges.
    assert inbox_types(api, "us.officer") == [("mla.event", "transmit")]
    act(api, "us.officer", case_id, "acknowledge")
    act(api, "us.officer", case_id, "start_assessment")
    act(
        api,
        "us.officer",
        case_id,
        "request_information",
        {"question": "Which bank, which accounts, which period?"},
    )
    act(
        api,
        "it.officer",
        case_id,
        "provide_information",
        {"information": "Bank X, accounts 1 and 2, 2024-2025."},
    )
    act(
        api,
        "us.officer",
        case_id,
        "open_consultation",
        {"reason": "intended_refusal", "message": "Only on conditions of use."},
    )
    conditions = ["use only in proceeding RG 1234/2026", "no onward transfer to third States"]
    act(api, "us.officer", case_id, "offer_conditions", {"conditions": conditions})
    accepted = act(api, "it.supervisor", case_id, "accept_conditions")
    assert accepted["case"]["restrictions"] == conditions
    act(
        api,
        "us.officer",
        case_id,
        "assign_execution",
        {"executing_authority": "US Attorney's Office, SDNY"},
    )

    # Partial and final execution, each with an evidence package.
    files = []
    for content in (b"%PDF statements 2024", b"%PDF statements 2025"):
        r = call(
            api,
            "POST",
            f"/v1/cases/{case_id}/evidence",
            "pw:us.officer",
            params={"name": "statements.pdf", "sha256": hashlib.sha256(content).hexdigest()},
            content=content,
            headers={"Content-Type": "application/pdf"},
        )
        assert r.status_code == 201, r.text
        files.append((r.json()["id"], content))
    part = act(api, "us.officer", case_id, "deliver_partial", {"evidence": [files[0][0]]})
    payload = event_payload(api, part, "pw:us.officer")
    assert payload["attachments"][0]["sha256"] == hashlib.sha256(files[0][1]).hexdigest()
    act(api, "us.officer", case_id, "complete", {"evidence": [files[1][0]]})
    for file_id, content in files:
        r = call(
            api,
            "GET",
            f"/v1/cases/{case_id}/evidence/{file_id}",
            "pw:it.officer",
            params={"justification": "evidence for RG 1234/2026"},
        )
        assert r.status_code == 200, r.text
        assert r.content == content
        assert r.headers["x-content-sha256"] == hashlib.sha256(content).hexdigest()
    closed = act(api, "it.officer", case_id, "confirm_receipt")
    assert closed["case"]["state"] == "CLOSED"

    # Both sides hold the same history from transmission on; every event is signed, routed
    # and has its one audit leaf.
    ours = call(api, "GET", f"/v1/cases/{case_id}", "pw:it.officer").json()["timeline"]
    theirs = call(api, "GET", f"/v1/cases/{case_id}", "pw:us.officer").json()["timeline"]
    assert [e["event"] for e in ours] == [
        "submit_for_vetting",
        "return_to_drafter",
        "submit_for_vetting",
        "transmit",
        "acknowledge",
        "start_assessment",
        "request_information",
        "provide_information",
        "open_consultation",
        "offer_conditions",
        "accept_conditions",
        "assign_execution",
        "deliver_partial",
        "complete",
        "confirm_receipt",
    ]
    assert theirs == ours[3:]
    assert all(e["message_id"] and e["envelope_sha256"] for e in ours)
    assert count_rows(sync_engine, "audit_events", "kind = 'case:transition'") == len(ours)
    # The requesting central authority's inbox holds what the requested side sent, and the
    # drafting and vetting events, which never left it.
    received = [event for _, event in inbox_types(api, "it.officer")]
    internal = ["submit_for_vetting", "return_to_drafter", "submit_for_vetting"]
    from_them = [e["event"] for e in theirs if e["actor_participant"] == "us.central-authority"]
    assert received == internal + from_them


def test_fiu_exchange_with_consent_refused_then_granted(api: Api, sync_engine: Engine) -> None:
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})
    login(api, "nl.officer", "it.analyst")
    r = call(
        api,
        "POST",
        "/v1/cases",
        "pw:nl.officer",
        json={"workflow": "fiu.disclosure", "counterpart": "it.fiu", "request": disclosure()},
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    act(api, "nl.officer", case_id, "submit")
    assert inbox_types(api, "it.analyst") == [("fiu.disclosure", "submit")]
    act(api, "it.analyst", case_id, "acknowledge")

    def ask(purpose: str) -> str:
        r = call(
            api,
            "POST",
            "/v1/cases",
            "pw:it.analyst",
            json={
                "workflow": "consent",
                "parent_id": case_id,
                "body": {
                    "recipient": "it.guardia-di-finanza",
                    "purpose": purpose,
                    "reasons": "A tax fraud investigation needs it.",
                },
            },
        )
        assert r.status_code == 201, r.text
        thread: str = r.json()["id"]
        return thread

    first = ask("tax_investigation")
    refused = act(
        api,
        "nl.officer",
        first,
        "refuse_consent",
        {"grounds": ["other"], "reasons": "It would expose the reporting entity."},
    )
    assert refused["case"]["state"] == "CONSENT_REFUSED"
    second = ask("criminal_investigation")
    granted = act(
        api, "nl.officer", second, "grant_consent", {"conditions": ["not to be used as evidence"]}
    )
    assert granted["case"]["state"] == "CONSENT_GRANTED"
    assert ("fiu.consent", "grant_consent") in inbox_types(api, "it.analyst")

    parent = call(api, "GET", f"/v1/cases/{case_id}", "pw:it.analyst").json()
    assert [t["state"] for t in parent["threads"]] == ["CONSENT_REFUSED", "CONSENT_GRANTED"]
    assert [c["purpose"] for c in parent["terms"]["consents"]] == ["criminal_investigation"]
    for kind in ("consent:requested", "consent:refused", "consent:granted"):
        expected = 2 if kind == "consent:requested" else 1
        assert count_rows(sync_engine, "audit_events", "kind = :k", k=kind) == expected
