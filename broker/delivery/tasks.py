"""Celery entry points of delivery."""

from __future__ import annotations

from broker.core.context import NodeContext
from broker.core.db import Database
from broker.core.logging import get_logger
from broker.delivery.service import relay_outbox
from broker.worker import runtime, settings, task

log = get_logger(__name__)


async def relay_all(db: Database, node: NodeContext, *, batch_size: int) -> int:
    """Relay batches until the outbox is empty; one transaction per batch."""
    total = 0
    while True:
        async with db.session() as session:
            moved = await relay_outbox(session, node_id=node.node_id, batch_size=batch_size)
            await session.commit()
        total += moved
        if moved < batch_size:
            return total


@task(name="palermo.delivery.relay", max_retries=0)
def relay() -> int:
    async def run(db: Database, node: NodeContext) -> int:
        return await relay_all(db, node, batch_size=settings.relay_batch_size)

    moved = runtime.run(run)
    if moved:
        log.info("outbox relayed", delivered=moved)
    return moved
