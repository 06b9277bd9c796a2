"""P5 (UNTOC art. 18(19)): material received through MLA may be disclosed as exculpatory only
after notice to the requested State, or flagged as late notice, which obliges the requesting
State to inform it without delay. Tried through the forward route, with the case the material
came in deciding it (issue 14 item 2)."""

from __future__ import annotations

from typing import Any

from broker.client import sign
from tests.conftest import Api
from tests.integration.messaging_helpers import payload, relay
from tests.integration.test_case_helpers import DRAFTER, HANDLER, fire, to_execution, upload


def _reasons(r: Any) -> list[str]:
    assert r.status_code == 403, r.text
    return [x["rule"] for x in r.json()["reasons"]]


def _disclose(api: Api, message_id: str, **extra: Any) -> Any:
    draft = {"recipient": "de.bka", "purpose": "exculpatory_disclosure", **extra}
    return api.post(f"/v1/messages/{message_id}/forward", as_=DRAFTER, json={"draft": draft})


def evidence_received(api: Api) -> tuple[str, str]:
    case = to_execution(api)
    file_id = upload(api, case["id"], HANDLER, b"bank records that clear the defendant")
    done = fire(api, case["id"], "complete", HANDLER, {"evidence": [file_id]})
    relay(api.settings)
    return case["id"], str(done["event"]["message_id"])


def test_an_exculpatory_disclosure_needs_the_notice_on_file(api: Api) -> None:
    case_id, message_id = evidence_received(api)
    assert "P5.notice" in _reasons(_disclose(api, message_id))
    fire(api, case_id, "exculpatory_notice", DRAFTER, {})
    # The notice is on file: the disclosure goes.
    r = _disclose(api, message_id)
    assert r.status_code == 202, r.text


def test_a_late_notice_lifts_p5_and_obliges_a_follow_up(api: Api) -> None:
    _, message_id = evidence_received(api)
    r = _disclose(api, message_id, late_notice=True)
    assert r.status_code == 202, r.text
    shown = api.get(f"/v1/messages/{r.json()['id']}", as_=DRAFTER).json()
    assert "P5.late" in str(shown), shown


def test_material_outside_a_case_needs_no_notice(api: Api) -> None:
    key = api.world.keys["de.bka"]
    sent = api.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
    assert sent.status_code == 202, sent.text
    relay(api.settings)
    r = api.post(
        f"/v1/messages/{sent.json()['id']}/forward",
        as_=DRAFTER,
        json={"draft": {"recipient": "nl.fiu", "purpose": "exculpatory_disclosure"}},
    )
    assert r.status_code != 403 or "P5.notice" not in _reasons(r), r.text


def test_a_forward_of_a_forward_still_needs_the_notice(api: Api) -> None:
    """The material keeps the case it came in through every hop: a second forward of MLA
    evidence as exculpatory is decided with that case's records, not as material from
    nowhere (UNTOC art. 18(19))."""
    _, message_id = evidence_received(api)
    first = api.post(
        f"/v1/messages/{message_id}/forward",
        as_=DRAFTER,
        json={"draft": {"recipient": "de.bka"}},
    )
    assert first.status_code == 202, first.text
    relay(api.settings)
    again = api.post(
        f"/v1/messages/{first.json()['id']}/forward",
        as_="de.system",
        json={"draft": {"recipient": "nl.fiu", "purpose": "exculpatory_disclosure"}},
    )
    assert "P5.notice" in _reasons(again)
