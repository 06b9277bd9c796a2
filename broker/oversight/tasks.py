"""Celery entry points of the audit log: the sequencer, and cosignature collection.

Beat runs `sequence` every PALERMO_CHECKPOINT_INTERVAL_SECONDS (the checkpoint lag, 1 s by
default). It sequences batches until the queue is empty, one transaction and one signed
checkpoint per batch; when witnesses are configured it then sends `cosign`, after its own
transactions committed, on the queue it came from.
"""

from __future__ import annotations

import httpx
from celery import current_task

from broker.core.context import NodeContext
from broker.core.db import Database
from broker.core.logging import get_logger
from broker.core.tasks import runtime, settings, task
from broker.oversight.cosigning import collect_cosignatures, configured_witnesses
from broker.oversight.sequencer import Batch, log_signer, sequence_batch

log = get_logger(__name__)


async def sequence_all(
    db: Database, *, origin: str, seed: bytes, batch_size: int, wait: bool = True
) -> tuple[int, Batch | None]:
    """Sequence until the queue is empty; return (leaves sequenced, the last batch). The last
    batch is None when ``wait`` is false and another sequencer holds the lock.

    Raises:
        broker.oversight.sequencer.SequencerError: the stored log does not match the latest
            checkpoint.
    """
    signer = log_signer(origin, seed)
    total = 0
    last: Batch | None = None
    while True:
        async with db.session() as session:
            batch = await sequence_batch(
                session, signer=signer, origin=origin, batch_size=batch_size, wait=wait
            )
            await session.commit()
        if batch is None:
            return total, last
        total += batch.added
        last = batch
        if batch.added < batch_size:
            return total, last


@task(name="palermo.oversight.sequence", max_retries=0)
def sequence() -> int:
    async def run(db: Database, node: NodeContext) -> tuple[int, Batch | None]:
        return await sequence_all(
            db,
            origin=settings.node_id,
            seed=settings.node_signing_seed,
            batch_size=settings.sequencer_batch_size,
            wait=False,
        )

    added, last = runtime.run(run)
    if added and last is not None:
        log.info("audit log sequenced", added=added, size=last.size)
    if settings.witness_urls.strip():
        # On the queue this run came from, so that a deployment routing audit work to its
        # own queue gets the cosign task there too.
        delivery = getattr(current_task.request, "delivery_info", None) or {}
        cosign.apply_async(queue=delivery.get("routing_key"))
    return added


@task(name="palermo.oversight.cosign", max_retries=0)
def cosign() -> int:
    async def run(db: Database, node: NodeContext) -> int:
        verifier = log_signer(settings.node_id, settings.node_signing_seed).verifier()
        async with httpx.AsyncClient(timeout=settings.witness_timeout_seconds) as client:
            return await collect_cosignatures(
                db,
                witnesses=configured_witnesses(settings),
                log_verifier=verifier,
                client=client,
            )

    stored = runtime.run(run)
    if stored:
        log.info("witness cosignatures stored", count=stored)
    return stored
