"""Builders shared by the messaging tests."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from broker.client import KeyFile, new_payload, sign
from broker.core.db import Database
from broker.core.settings import Settings
from broker.delivery.service import relay_outbox

LEGAL: dict[str, Any] = {"legal_basis": "UNTOC art. 27", "purpose": "investigation RG 1234/2026"}
# What an intelligence message must declare (POLICY-RULES P12, P13).
INTEL: dict[str, Any] = {"handling": {"code": "H0"}, "evaluation": "B2", "statement_kind": "fact"}


def payload(key: KeyFile, recipient: str = "it.central-authority", **over: Any) -> dict[str, Any]:
    base = new_payload(
        sender=key.participant,
        recipient=recipient,
        type="intel.message",
        body={"summary": "Vessel MARIA LUISA expected in Genoa on 3 December"},
        data_categories=["vessel-movement"],
        **LEGAL,
        **INTEL,
    )
    base.update(over)
    return base


def envelope(key: KeyFile, **over: Any) -> dict[str, Any]:
    return sign(key, payload(key, **over))


def relay(settings: Settings) -> int:
    """Run the relay the worker runs, once, in its own transaction."""

    async def go() -> int:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                moved = await relay_outbox(session, node_id=settings.node_id, batch_size=100)
                await session.commit()
                return moved
        finally:
            await db.dispose()

    return asyncio.run(go())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
