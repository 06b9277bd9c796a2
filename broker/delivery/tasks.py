"""Celery entry points of delivery: the relay (run by beat) and the deliver task.

The relay claims due outbox rows with a lease and sends one ``deliver`` task per batch of
ids (``PALERMO_DELIVERY_BATCH_SIZE``), to the queue it was itself taken from, so a worker pool
pinned to a queue runs its whole pipeline. Per-message retries live in the outbox row
(backoff and jitter, then dead letter); the deliver task's own Celery retries cover only
failures of the database or the broker around it, and its rows come back by lease expiry if
even those run out. Both tasks are ``acks_late``: a worker killed mid-task leaves the task to
be redelivered, and completed rows are gone from the outbox, so it delivers each once.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from celery.signals import worker_init
from sqlalchemy.exc import InterfaceError, OperationalError

from adapters.contracts import NodeIdentity
from adapters.destinations import rules_from
from broker.core.context import NodeContext
from broker.core.db import Database
from broker.core.logging import get_logger
from broker.core.settings import ConfigurationError, Settings
from broker.core.tasks import runtime, settings, task
from broker.delivery.federation import ImportReport, import_drop
from broker.delivery.pipeline import AdapterPool, BatchReport, deliver_batch
from broker.delivery.service import RetryPolicy, check_adapters, claim_due

log = get_logger(__name__)
_pool: AdapterPool | None = None
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def retry_policy(s: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=s.delivery_max_attempts,
        backoff_seconds=s.delivery_backoff_seconds,
        backoff_max_seconds=s.delivery_backoff_max_seconds,
    )


def node_identity(node: NodeContext, s: Settings) -> NodeIdentity:
    return NodeIdentity(
        node_id=node.node_id,
        signer=node.signer,
        timeout_seconds=s.delivery_timeout_seconds,
        rules=rules_from(s),
        batch_max_items=s.federation_batch_max_envelopes,
        batch_max_bytes=s.resolved_federation_batch_max_bytes,
    )


def adapter_pool(node: NodeContext) -> AdapterPool:
    global _pool  # noqa: PLW0603 - one pool per worker process, made after fork
    if _pool is None:
        _pool = AdapterPool(node_identity(node, settings))
    return _pool


async def claim_batches(db: Database, *, limit: int, batch_size: int, lease: float) -> list[int]:
    """Claim due rows, one committed transaction per ``batch_size``, up to ``limit``."""
    claimed: list[int] = []
    while len(claimed) < limit:
        async with db.session() as session:
            ids = await claim_due(
                session, limit=min(batch_size, limit - len(claimed)), lease_seconds=lease
            )
            await session.commit()
        claimed.extend(ids)
        if len(ids) < batch_size:
            break
    return claimed


def _queue() -> str | None:
    info: dict[str, Any] = relay.request.delivery_info or {}
    routing_key = info.get("routing_key")
    return str(routing_key) if routing_key else None


@task(name="palermo.delivery.relay", max_retries=0)
def relay() -> int:
    """Hand due outbox rows to deliver tasks, in batches. Returns how many rows it claimed."""

    async def run(db: Database, node: NodeContext) -> list[int]:
        return await claim_batches(
            db,
            limit=settings.relay_max_per_run,
            batch_size=settings.relay_batch_size,
            lease=settings.delivery_lease_seconds,
        )

    ids = runtime.run(run)
    queue = _queue()
    size = settings.delivery_batch_size
    for start in range(0, len(ids), size):
        deliver.apply_async(args=[ids[start : start + size]], queue=queue)
    if ids:
        log.info("outbox relayed", claimed=len(ids), tasks=-(-len(ids) // size))
    return len(ids)


@task(name="palermo.delivery.deliver", max_retries=settings.delivery_task_max_retries)
def deliver(outbox_ids: list[int]) -> dict[str, int]:
    """Deliver a batch of outbox rows through their recipients' adapters."""
    policy = retry_policy(settings)

    async def run(db: Database, node: NodeContext) -> BatchReport:
        return await deliver_batch(
            db,
            node,
            adapter_pool(node),
            outbox_ids,
            policy=policy,
            concurrency=settings.delivery_concurrency,
            adapter_timeout=settings.delivery_timeout_seconds,
        )

    try:
        report = runtime.run(run)
    except TRANSIENT as exc:
        retries = int(deliver.request.retries or 0)
        countdown = min(policy.delay(retries + 1), 60.0)
        log.warning("deliver task will retry", error=type(exc).__name__, countdown=countdown)
        raise deliver.retry(exc=exc, countdown=countdown) from exc
    if report.delivered or report.inbox or report.retry or report.dead_lettered:
        log.info(
            "delivered",
            inbox=report.inbox,
            pushed=report.delivered,
            retry=report.retry,
            dead_lettered=report.dead_lettered,
        )
    return {
        "inbox": report.inbox,
        "delivered": report.delivered,
        "retry": report.retry,
        "dead_lettered": report.dead_lettered,
    }


def check_node_adapters(s: Settings) -> None:
    """Raises ConfigurationError if a participant's adapter is unknown or misconfigured."""

    async def go() -> None:
        db = Database(s.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                await check_adapters(session, rules=rules_from(s))
        finally:
            await db.dispose()

    asyncio.run(go())


def refuse_bad_adapters(**_: Any) -> None:
    """worker_init: a worker does not start on an adapter configuration it cannot use."""
    try:
        check_node_adapters(settings)
    except ConfigurationError as exc:
        sys.stderr.write(f"palermo worker: {exc}\n")
        raise SystemExit(2) from exc


@task(name="palermo.delivery.filedrop_import", max_retries=0)
def filedrop_import() -> int:
    """Import what peer nodes dropped in PALERMO_FILEDROP_IMPORT_DIR (run by beat)."""
    directory = settings.filedrop_import_dir
    if directory is None or not directory.is_dir():
        log.warning("no file drop directory to import from", directory=str(directory))
        return 0

    async def run(db: Database, node: NodeContext) -> ImportReport:
        return await import_drop(
            db, node, directory, max_age_seconds=settings.federation_max_age_seconds
        )

    report = runtime.run(run)
    if report.accepted or report.rejected:
        log.info(
            "file drop imported",
            accepted=len(report.accepted),
            duplicates=len(report.duplicates),
            rejected=len(report.rejected),
        )
    return len(report.accepted)


worker_init.connect(refuse_bad_adapters)
