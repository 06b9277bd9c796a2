"""Notices that reach people, and urgent messages first.

Every notice the node's clocks raise on a case (reminder, escalation, postponement review,
escalation of an unconfirmed urgent request) is delivered as a node-signed ``notice``
message to the participant it is for, once, however often and by however many schedulers
the timers run; and an urgent message is relayed before the others, however many were
queued before it (P3, P8, P10; UNTOC art. 18(14), 18(24), 18(25))."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Any

import orjson
from sqlalchemy import Engine, text

from broker.cases import service
from broker.cases.models import Case
from broker.cases.scheduler import run_clocks, tick_case
from broker.core.context import node_context
from broker.core.db import Database
from broker.delivery.service import claim_due, relay_outbox
from broker.envelopes import dsse
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_clocks import CLOCKS
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    FakeClock,
    call,
    case_config,
    fire,
    get_case,
    open_case,
    register_partner,
    set_clocks,
    tick,
    to_assessment,
    to_transmitted,
    use_clock,
)
from tests.integration.test_delivery_helpers import Agency, agency_server, deliver_once
from tests.integration.test_fiu import fiu_request
from tests.integration.web_helpers import Browser


def inbox(api: Api, who: str, **params: Any) -> list[dict[str, Any]]:
    r = call(api, "GET", "/v1/inbox", who, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return [i["message"] for i in r.json()["items"]]


def notices(api: Api, who: str, case_id: str) -> list[dict[str, Any]]:
    """The notices of ``case_id`` delivered to ``who``, each as its payload's body."""
    relay(api.settings)
    out = []
    for m in inbox(api, who):
        if m["type"] == "notice" and m["case_id"] == case_id:
            r = call(
                api,
                "GET",
                f"/v1/messages/{m['id']}/content",
                who,
                params={"justification": "reading the node's notice on the case"},
            )
            assert r.status_code == 200, r.text
            out.append({"urgent": m["urgent"], **r.json()["payload"]["body"]})
    return out


def test_a_postponement_review_reaches_the_requested_side(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    case = to_assessment(api)
    body = {"reason": "postponement", "message": "Execution would alert the suspects."}
    fire(api, case["id"], "open_consultation", HANDLER, body)
    fire(api, case["id"], "back_to_assessment", HANDLER)
    fire(api, case["id"], "accept", HANDLER)
    fire(api, case["id"], "assign_execution", HANDLER, {"executing_authority": "SDNY"})
    review = clock.now + dt.timedelta(days=14)
    postpone = {"grounds": ["ongoing_investigation"], "reasons": "Covert."}
    fire(api, case["id"], "postpone", HANDLER, {**postpone, "review_date": review.isoformat()})
    assert tick(api, clock.advance(days=14)) == 1
    [notice] = notices(api, HANDLER, case["id"])
    assert notice["notice"] == "postponement_review"
    assert notice["rule"] == {"id": "P8", "citation": "UNTOC art. 18(25)"}
    assert dt.datetime.fromisoformat(notice["due_at"]) == review
    assert notice["case"]["state"] == "POSTPONED"
    assert notice["urgent"] is False
    assert notices(api, DRAFTER, case["id"]) == []


def test_an_unconfirmed_urgent_request_escalates_to_the_requesting_side(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    case = to_transmitted(api, urgent=True, initiated_by="oral")
    assert tick(api, clock.advance(hours=25)) == 1
    [notice] = notices(api, DRAFTER, case["id"])
    assert notice["notice"] == "confirmation_escalation"
    assert notice["rule"] == {"id": "P3", "citation": "UNTOC art. 18(14)"}
    assert notice["urgent"] is True
    assert notices(api, HANDLER, case["id"]) == []


def _reminder_due(api: Api) -> tuple[FakeClock, str]:
    """A transmitted request whose acknowledgement reminder (2 days before its 7) is due."""
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    case = to_transmitted(api)
    clock.advance(days=5, hours=1)
    return clock, str(case["id"])


def test_a_notice_is_delivered_once_when_the_timers_run_again(
    api: Api, sync_engine: Engine
) -> None:
    clock, case_id = _reminder_due(api)
    node, config = node_context(api.settings), case_config(api)

    async def crashed_then_twice() -> list[int]:
        db = Database(api.settings.resolved_database_url, pool_size=2)
        try:
            # A timer that raised the notice and died before it committed leaves nothing.
            async with db.session() as session:
                raised = await tick_case(
                    session, node=node, config=config, case_id=case_id, now=clock.now
                )
                assert raised == ["reminder"]
                await session.rollback()
            # Then two schedulers at once, and a third pass.
            other = Database(api.settings.resolved_database_url, pool_size=2)
            try:
                both = await asyncio.gather(
                    run_clocks(db, node, config, clock.now),
                    run_clocks(other, node, config, clock.now),
                )
            finally:
                await other.dispose()
            return [*both, await run_clocks(db, node, config, clock.now)]
        finally:
            await db.dispose()

    counts = asyncio.run(crashed_then_twice())
    assert sorted(counts) == [0, 0, 1]
    where = "case_id = :c AND type = 'notice'"
    assert count_rows(sync_engine, "messages", where, c=case_id) == 1
    assert (
        count_rows(sync_engine, "case_events", "case_id = :c AND event = 'reminder'", c=case_id)
        == 1
    )
    [notice] = notices(api, HANDLER, case_id)
    assert notice["notice"] == "reminder"
    assert notice["rule"] == {"id": "P10", "citation": "it-us-mlat-1982 (test configuration)"}


def test_an_urgent_message_is_relayed_before_those_queued_before_it(
    api: Api, sync_engine: Engine
) -> None:
    key = api.world.keys["de.bka"]
    normal = []
    for _ in range(6):
        r = api.post("/v1/messages", as_="de.system", json=envelope(key))
        assert r.status_code == 202, r.text
        normal.append(r.json()["id"])
    r = api.post("/v1/messages", as_="de.system", json=envelope(key, urgent=True))
    assert r.status_code == 202, r.text
    urgent = r.json()["id"]
    assert api.get(f"/v1/messages/{urgent}", as_="de.system").json()["urgent"] is True

    async def claim_one() -> list[int]:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                ids = await claim_due(session, limit=1, lease_seconds=60)
                await session.rollback()
            return ids
        finally:
            await db.dispose()

    # The worker's relay claims the urgent row first...
    [claimed] = asyncio.run(claim_one())
    assert (
        count_rows(sync_engine, "outbox", "id = :i AND message_id = :m", i=claimed, m=urgent) == 1
    )

    async def relay_one() -> int:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                moved = await relay_outbox(session, node_id=api.settings.node_id, batch_size=1)
                await session.commit()
            return moved
        finally:
            await db.dispose()

    # ...and the embedded relay delivers it first, one at a time.
    assert asyncio.run(relay_one()) == 1
    assert [m["id"] for m in inbox(api, "it.officer")] == [urgent]
    relay(api.settings)
    assert [m["id"] for m in inbox(api, "it.officer")] == [urgent, *normal]
    # The inbox narrows to urgent messages, or to the others.
    assert [m["id"] for m in inbox(api, "it.officer", urgent="true")] == [urgent]
    assert [m["id"] for m in inbox(api, "it.officer", urgent="false")] == normal
    r = call(api, "GET", "/v1/inbox", "it.officer", params={"urgent": "maybe"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_the_web_inbox_shows_urgent_unacknowledged_messages_first(api: Api) -> None:
    key = api.world.keys["de.bka"]
    for urgent in (False, False, True):
        r = api.post("/v1/messages", as_="de.system", json=envelope(key, urgent=urgent))
        assert r.status_code == 202, r.text
    urgent_id = r.json()["id"]
    relay(api.settings)
    browser = Browser(api.client)
    browser.sign_in("it.officer")
    page = browser.get("/inbox").text
    top, _, rest = page.partition("All messages")
    assert "Urgent, not yet acknowledged" in top
    assert top.count("/messages/") == 1
    assert f"/messages/{urgent_id}" in top
    assert rest.count("/messages/") == 3  # all of them again, in their order
    # Once acknowledged it is no longer singled out.
    r = api.post(f"/v1/messages/{urgent_id}/receipt", as_="it.officer")
    assert r.status_code == 200, r.text
    assert "Urgent, not yet acknowledged" not in browser.get("/inbox").text


def test_nobody_but_the_node_issues_a_notice(api: Api, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "messages")
    env = envelope(api.world.keys["de.bka"], type="notice", body={"notice": "escalation"})
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "payload.type"
    assert count_rows(sync_engine, "messages") == before


def test_a_notice_reaches_a_webhook_recipient_through_the_delivery_path(
    api: Api, sync_engine: Engine
) -> None:
    """nl.fiu takes its messages by webhook: the reminder of the Egmont reply clock is pushed
    to its endpoint, signed by the node, and its own signed receipt comes back."""
    clock = use_clock(api, FakeClock())
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})
    case = open_case(
        api, "it.analyst", workflow="fiu.request", counterpart="nl.fiu", request=fiu_request()
    )
    fire(api, case["id"], "submit", "it.analyst")
    [reply] = get_case(api, case["id"], "it.analyst")["deadlines"]
    due = dt.datetime.fromisoformat(reply["due_at"])
    node = api.get("/v1/node").json()
    agency = Agency(
        node_keys={node["signing_key_id"]: base64.b64decode(node["signing_public_key"])},
        receipt_key=api.world.keys["nl.fiu"],
    )
    with agency_server(agency):
        r = api.request(
            "PUT",
            "/v1/participants/nl.fiu/adapter",
            as_="it.admin",
            json={"adapter": "webhook", "config": {"url": agency.url}},
        )
        assert r.status_code == 200, r.text
        clock.now = due - dt.timedelta(hours=119)
        assert tick(api, clock.now) == 1
        report = deliver_once(api.settings)
    assert report.dead_lettered == 0
    with sync_engine.connect() as c:
        notice_id = c.execute(
            text("SELECT id FROM messages WHERE case_id = :c AND type = 'notice'"),
            {"c": case["id"]},
        ).scalar_one()
    pushed = dsse.parse_envelope_json(agency.received[notice_id])
    payload = orjson.loads(pushed.payload)
    assert payload["type"] == "notice"
    assert payload["body"]["notice"] == "reminder"
    assert payload["body"]["rule"]["citation"] == "Egmont Principles for Information Exchange"
    assert dt.datetime.fromisoformat(payload["body"]["due_at"]) == due
    status = call(api, "GET", f"/v1/messages/{notice_id}", "nl.officer").json()
    assert status["status"] == "receipted"
    assert [a["adapter"] for a in status["attempts"]] == ["webhook"]


def test_a_notice_of_a_kind_the_clocks_do_not_know_is_delivered_too(api: Api) -> None:
    """What the case services record as a notice (a tracked follow-up, say) reaches people
    through the same path: to the side its details name."""
    case = to_transmitted(api)
    due = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)

    async def follow_up() -> None:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                row = await session.get(Case, case["id"])
                assert row is not None
                loaded = await service.load(session, row)
                await service.record_notice(
                    session,
                    node=node_context(api.settings),
                    loaded=loaded,
                    notice="follow_up",
                    key="domestic-prosecution",
                    detail={
                        "side": "requested",
                        "due_at": due.isoformat(),
                        "rule": "P20",
                        "citation": "UNTOC art. 16(10)",
                    },
                    now=dt.datetime.now(dt.UTC),
                )
                await session.commit()
        finally:
            await db.dispose()

    asyncio.run(follow_up())
    [notice] = notices(api, HANDLER, case["id"])
    assert notice["notice"] == "follow_up"
    assert dt.datetime.fromisoformat(notice["due_at"]) == due
    assert notice["rule"] == {"id": "P20", "citation": "UNTOC art. 16(10)"}
    assert notices(api, DRAFTER, case["id"]) == []
