"""Follow-ups (issue 14 items 3 and 5): a ``follow_up`` obligation opens a tracked item for the
participant responsible, with a due date the clocks remind about. P5.late (UNTOC art.
18(19)): an exculpatory disclosure made without prior notice obliges the requesting State to
inform the requested State without delay; the item belongs to the case the material came in,
and its reminder is a notice in that case's history, as the case clocks' own are."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import now
from tests.integration.test_case_helpers import DRAFTER, HANDLER, get_case, tick
from tests.integration.test_exculpatory import evidence_received
from tests.integration.test_messages import assert_problem


def late_disclosure(api: Api) -> tuple[str, str]:
    case_id, message_id = evidence_received(api)
    draft = {"recipient": "de.bka", "purpose": "exculpatory_disclosure", "late_notice": True}
    r = api.post(f"/v1/messages/{message_id}/forward", as_=DRAFTER, json={"draft": draft})
    assert r.status_code == 202, r.text
    return case_id, r.json()["id"]


def open_items(api: Api, as_: str, **params: str) -> list[dict[str, Any]]:
    r = api.get("/v1/follow-ups", as_=as_, params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def kinds(engine: Engine, follow_up_id: str) -> list[str]:
    with engine.connect() as c:
        rows = c.execute(text("SELECT kind, leaf FROM audit_events ORDER BY id")).all()
    return [k for k, leaf in rows if json.loads(bytes(leaf)).get("follow_up_id") == follow_up_id]


def test_a_late_notice_opens_a_follow_up_for_the_disclosing_participant(
    api: Api, sync_engine: Engine
) -> None:
    before = now()
    case_id, forward_id = late_disclosure(api)
    (item,) = open_items(api, DRAFTER)
    assert item["participant"] == "it.central-authority"
    assert item["rule"] == "P5.late"
    assert "inform the requested State" in item["what"]
    assert item["case_id"] == case_id
    assert item["message_id"] == forward_id
    assert item["status"] == "open"
    due = dt.datetime.fromisoformat(item["due_at"])
    assert before + dt.timedelta(days=7) <= due <= now() + dt.timedelta(days=7)
    assert kinds(sync_engine, item["id"]) == ["follow_up:opened"]
    # Nobody else is responsible for it, nor sees it.
    assert open_items(api, HANDLER) == []
    assert open_items(api, "de.system") == []


def test_a_disclosure_after_notice_opens_nothing(api: Api, sync_engine: Engine) -> None:
    from tests.integration.test_case_helpers import fire

    case_id, message_id = evidence_received(api)
    fire(api, case_id, "exculpatory_notice", DRAFTER, {})
    draft = {"recipient": "de.bka", "purpose": "exculpatory_disclosure"}
    r = api.post(f"/v1/messages/{message_id}/forward", as_=DRAFTER, json={"draft": draft})
    assert r.status_code == 202, r.text
    assert open_items(api, DRAFTER) == []
    assert count_rows(sync_engine, "follow_ups") == 0


def test_the_clocks_remind_once_when_it_falls_due_in_the_case(
    api: Api, sync_engine: Engine
) -> None:
    case_id, _ = late_disclosure(api)
    (item,) = open_items(api, DRAFTER)
    tick(api, now() + dt.timedelta(days=1))
    assert "follow_up_due" not in [e["event"] for e in get_case(api, case_id)["timeline"]]
    tick(api, now() + dt.timedelta(days=8))
    tick(api, now() + dt.timedelta(days=9))
    timeline = get_case(api, case_id)["timeline"]
    (notice,) = [e for e in timeline if e["event"] == "follow_up_due"]
    assert notice["side"] == "system"
    assert notice["node_signature"]
    assert notice["details"]["follow_up"] == item["id"]
    assert notice["details"]["rule"] == "P5.late"
    assert notice["details"]["participant"] == "it.central-authority"
    # Delivered as a node-signed notice message to the participant responsible only.
    with sync_engine.connect() as conn:
        recipients = [
            r
            for (r,) in conn.execute(
                text("SELECT recipient_id FROM messages WHERE type = 'notice' AND case_id = :c"),
                {"c": case_id},
            )
        ]
    assert recipients.count("it.central-authority") >= 1
    with sync_engine.connect() as conn:
        follow_up_notices = conn.execute(
            text(
                "SELECT m.recipient_id FROM messages m JOIN case_events e"
                " ON e.case_id = m.case_id WHERE m.type = 'notice' AND e.event = 'follow_up_due'"
                " AND m.case_id = :c AND m.accepted_at = e.at"
            ),
            {"c": case_id},
        ).all()
    assert [r for (r,) in follow_up_notices] == ["it.central-authority"]
    (reminded,) = open_items(api, DRAFTER)
    assert reminded["reminded_at"] is not None
    assert reminded["status"] == "open"  # a reminder does not do the work
    # Among the clocks' reminders on the home page, and named on the case page.
    from tests.integration.web_helpers import Browser

    api.client.cookies.clear()
    browser = Browser(api.client)
    assert browser.sign_in(DRAFTER).status_code == 303
    notices = browser.get("/").text.split('id="notices-title"')[1].split("</section>")[0]
    assert "Follow-up due" in notices
    assert "inform the requested State" in notices
    assert "P5.late" in notices
    assert "Follow-up due" in browser.get(f"/cases/{case_id}").text


def test_marking_it_done_is_audited_and_final(api: Api, sync_engine: Engine) -> None:
    late_disclosure(api)
    (item,) = open_items(api, DRAFTER)
    r = api.post(f"/v1/follow-ups/{item['id']}/done", as_="it.supervisor")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "done"
    assert r.json()["done_at"]
    assert open_items(api, DRAFTER) == []
    assert [i["id"] for i in open_items(api, DRAFTER, status="done")] == [item["id"]]
    assert [i["id"] for i in open_items(api, DRAFTER, status="all")] == [item["id"]]
    assert kinds(sync_engine, item["id"]) == ["follow_up:opened", "follow_up:done"]
    again = api.post(f"/v1/follow-ups/{item['id']}/done", as_=DRAFTER)
    assert_problem(again, 409, "invalid-state")
    # Done before it fell due: no reminder.
    tick(api, now() + dt.timedelta(days=8))
    assert kinds(sync_engine, item["id"]) == ["follow_up:opened", "follow_up:done"]


@pytest.mark.parametrize("who", ["us.officer", "us.supervisor", "de.system", "nl.officer"])
def test_another_participant_cannot_complete_it(api: Api, who: str) -> None:
    late_disclosure(api)
    (item,) = open_items(api, DRAFTER)
    assert_problem(api.post(f"/v1/follow-ups/{item['id']}/done", as_=who), 404, "not-found")
    assert open_items(api, DRAFTER)[0]["status"] == "open"


@pytest.mark.parametrize("who", ["oversight", "it.admin"])
def test_only_handlers_list_or_complete(api: Api, who: str) -> None:
    late_disclosure(api)
    (item,) = open_items(api, DRAFTER)
    assert_problem(api.get("/v1/follow-ups", as_=who), 403, "forbidden")
    assert_problem(api.post(f"/v1/follow-ups/{item['id']}/done", as_=who), 403, "forbidden")


def test_a_system_of_the_participant_completes_it(api: Api) -> None:
    late_disclosure(api)
    (item,) = open_items(api, "it.system")
    r = api.post(f"/v1/follow-ups/{item['id']}/done", as_="it.system")
    assert r.status_code == 200, r.text


def test_bad_ids_and_filters_are_clear_4xx(api: Api) -> None:
    assert_problem(api.post("/v1/follow-ups/nope/done", as_=DRAFTER), 404, "not-found")
    missing = "01a24303-4048-733f-8613-9e71075f2721"
    assert_problem(api.post(f"/v1/follow-ups/{missing}/done", as_=DRAFTER), 404, "not-found")
    r = api.get("/v1/follow-ups", as_=DRAFTER, params={"status": "late"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


FOLLOW_PACK = """\
pack: national
title: A national rule with obligations (example)
description: Vessel movements sent to a central authority are followed up and kept two years.
rules:
  - id: NAT.vessels-follow
    title: A vessel movement sent to a central authority is confirmed by telephone.
    citation: Example Act art. 2
    effect: permit
    when:
      all:
        - {attr: data_categories, op: contains, value: vessel_movement}
        - {attr: recipient.kind, op: eq, value: central_authority}
    obligations:
      - {kind: follow_up, value: confirm the sighting by telephone}
      - {kind: handling_text, value: not for publication}
      - {kind: retention, value: P2Y}
  - id: NAT.no-statistics
    title: Statistics do not go to a central authority.
    citation: Example Act art. 3
    effect: deny
    when:
      all:
        - {attr: data_categories, op: contains, value: statistics}
        - {attr: recipient.kind, op: eq, value: central_authority}
test_defaults:
  sender: {id: de.bka, kind: police}
  recipient: {id: it.central-authority, kind: central_authority}
  message_type: intel.message
  legal_basis: UNTOC art. 27
  purpose: investigation
  handling_code: H0
  evaluation: B2
  statement_kind: fact
tests:
  - name: NAT a vessel movement is followed up
    exercises: NAT
    context: {data_categories: [vessel_movement]}
    expect:
      effect: permit
      reasons: [baseline.permit, NAT.vessels-follow]
      obligations:
        - {kind: follow_up, value: confirm the sighting by telephone}
        - {kind: handling_text, value: not for publication}
        - {kind: retention, value: P2Y}
  - name: NAT statistics are refused
    exercises: NAT
    context: {data_categories: [statistics]}
    expect: {effect: deny, reasons: [NAT.no-statistics]}
"""


def test_a_deployment_follow_up_outside_a_case_is_reminded_by_its_own_leaf(
    api: Api, sync_engine: Engine, tmp_path: Any
) -> None:
    """Any pack's ``follow_up`` is carried out, also on a plain message: the item has no
    case, so its reminder is a ``follow_up:due`` leaf. The same decision's ``handling_text``
    is shown in the metadata and its ``retention`` sets the erasure deadline (P17)."""
    from broker.client import sign
    from tests.integration.messaging_helpers import payload, relay
    from tests.integration.test_policy import node

    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "national.yaml").write_text(FOLLOW_PACK)
    key = api.world.keys["de.bka"]
    with node(api, policy_paths=str(packs)) as national:
        r = national.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
        assert r.status_code == 202, r.text
        mid = r.json()["id"]
        relay(api.settings)
        (item,) = open_items(national, "de.system")
        assert item["rule"] == "NAT.vessels-follow"
        assert item["what"] == "confirm the sighting by telephone"
        assert item["case_id"] is None
        assert item["message_id"] == mid
        view = national.get(f"/v1/messages/{mid}", as_="it.officer").json()
        assert view["handling_texts"] == ["not for publication"]
        accepted = dt.datetime.fromisoformat(view["accepted_at"])
        until = dt.datetime.fromisoformat(view["retention_until"])
        assert until.year == accepted.year + 2
        assert (until.month, until.day) == (accepted.month, accepted.day)
    assert open_items(api, "it.officer") == []  # the recipient is not responsible
    tick(api, now() + dt.timedelta(days=8))
    tick(api, now() + dt.timedelta(days=9))
    assert kinds(sync_engine, item["id"]) == ["follow_up:opened", "follow_up:due"]
    (reminded,) = open_items(api, "de.system")
    assert reminded["reminded_at"] is not None
