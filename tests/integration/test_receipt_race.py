"""Concurrent receipts for one message record one receipt and one ``message:receipted`` leaf:
every caller gets that same receipt back (broker/messages/receipts.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, text

from broker.core.context import Caller, node_context
from broker.core.db import Database
from broker.messages import record_receipt
from tests.conftest import TEST_DB, Api, count_rows
from tests.integration.messaging_helpers import envelope, relay

CALLERS = 6


def delivered_message(api: Api) -> str:
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert r.status_code == 202, r.text
    relay(api.settings)
    message_id: str = r.json()["id"]
    return message_id


@pytest.mark.skipif(TEST_DB != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_receipts_store_one_receipt_and_one_leaf(api: Api, sync_engine: Engine) -> None:
    message_id = delivered_message(api)
    caller = Caller(
        account_id=api.world.account_ids["it.officer"],
        participant_id="it.central-authority",
        roles=frozenset({"officer"}),
        kind="person",
    )
    node = node_context(api.settings)

    async def race() -> list[str | None]:
        db = Database(api.settings.resolved_database_url, pool_size=CALLERS)
        ready = asyncio.Barrier(CALLERS)

        async def one() -> str | None:
            async with db.session() as session:
                # Every caller has read the message before any of them writes.
                await session.execute(text("SELECT 1"))
                await ready.wait()
                message = await record_receipt(
                    session, node=node, caller=caller, message_id=message_id, body=b""
                )
                receipt = message.receipt
                await session.commit()
                return receipt

        try:
            return await asyncio.gather(*(one() for _ in range(CALLERS)))
        finally:
            await db.dispose()

    receipts = asyncio.run(race())
    assert count_rows(sync_engine, "audit_events", "kind = 'message:receipted'") == 1
    with sync_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT receipt FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    assert receipts == [stored] * CALLERS
    served = api.get(f"/v1/messages/{message_id}", as_="de.system").json()["receipt"]
    assert served is not None


def test_a_second_receipt_returns_the_first(api: Api, sync_engine: Engine) -> None:
    message_id = delivered_message(api)
    first = api.post(f"/v1/messages/{message_id}/receipt", as_="it.officer", content=b"")
    second = api.post(f"/v1/messages/{message_id}/receipt", as_="it.officer", content=b"")
    assert first.status_code == second.status_code == 200, second.text
    assert first.json()["receipt"] == second.json()["receipt"]
    assert count_rows(sync_engine, "audit_events", "kind = 'message:receipted'") == 1
