"""One deliver task's work: a batch of outbox ids through their recipients' adapters.

Three short transactions, none held across a network call: read the batch; complete the
inbox (pull) rows under the inbox lock; call the push adapters concurrently, then record what
they answered. Rows whose adapters can batch (``BatchAdapter``: ``peer``) and share a
receiver go in calls of at most ``batch_max_items`` rows, spread over up to ``concurrency``
calls of at least ``SPREAD_MIN`` (federation: one signed request for many envelopes), each
row still recorded with its own result. A crash between them leaves the rows in the outbox:
a redelivered task or the relay's next claim finds them, and rows already recorded are gone,
so nothing is delivered into the inbox or audited twice. Push receivers deduplicate by
message id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import adapters
from adapters.contracts import (
    Adapter,
    AdapterConfigError,
    BatchAdapter,
    DeliveryResult,
    NodeIdentity,
    Outgoing,
)
from broker.core.context import NodeContext
from broker.core.db import Database, utcnow
from broker.core.errors import PalermoError
from broker.core.logging import get_logger
from broker.delivery.receipts import verify_receipt
from broker.delivery.service import (
    Pending,
    PushOutcome,
    RetryPolicy,
    complete_inbox,
    extend_lease,
    load_pending,
    record_push_outcomes,
)
from broker.messages import countersigned_envelope
from broker.messages.models import Message

log = get_logger(__name__)
# The fewest rows a batched call is split down to when there is concurrency to spare.
SPREAD_MIN = 25


@dataclass
class AdapterPool:
    """Adapters built from each recipient's configuration, kept for the process and rebuilt
    when the configuration changes."""

    node: NodeIdentity
    _cache: dict[tuple[str, str, bytes], Adapter] = field(default_factory=dict)

    def get(self, pending: Pending) -> Adapter:
        """Raises AdapterConfigError."""
        key = (
            pending.recipient_id,
            pending.adapter,
            orjson.dumps(pending.adapter_config, option=orjson.OPT_SORT_KEYS),
        )
        adapter = self._cache.get(key)
        if adapter is None:
            adapter = adapters.build_adapter(pending.adapter, pending.adapter_config, self.node)
            self._cache[key] = adapter
        return adapter

    async def aclose(self) -> None:
        for adapter in self._cache.values():
            await adapter.aclose()
        self._cache.clear()


@dataclass(frozen=True, slots=True)
class BatchReport:
    inbox: int = 0
    delivered: int = 0
    retry: int = 0
    dead_lettered: int = 0


async def deliver_batch(
    db: Database,
    node: NodeContext,
    pool: AdapterPool,
    outbox_ids: Sequence[int],
    *,
    policy: RetryPolicy,
    concurrency: int,
    adapter_timeout: float,
) -> BatchReport:
    """Deliver the rows among ``outbox_ids`` that are still in the outbox."""
    pull, push, messages = await _read_batch(db, pool, outbox_ids)
    if push:
        # The longest these calls may take, all timing out, with a margin.
        window = -(-len(push) // concurrency) * adapter_timeout + 30.0
        async with db.session() as session:
            await extend_lease(session, [p.outbox_id for p, _, _ in push], window)
            await session.commit()
    inbox_count = 0
    if pull:
        async with db.session() as session:
            done = await complete_inbox(
                session, node_id=node.node_id, outbox_ids=[p.outbox_id for p in pull]
            )
            await session.commit()
        inbox_count = len(done)
    if not push:
        return BatchReport(inbox=inbox_count)
    outcomes = await _push_all(node, push, messages, concurrency, adapter_timeout)
    async with db.session() as session:
        checked, receipts = await _check_receipts(session, outcomes, messages)
        counts = await record_push_outcomes(
            session, node_id=node.node_id, outcomes=checked, policy=policy, receipts=receipts
        )
        await session.commit()
    return BatchReport(
        inbox=inbox_count,
        delivered=counts["delivered"],
        retry=counts["retry"],
        dead_lettered=counts["dead_lettered"],
    )


_Push = tuple[Pending, Adapter | None, str | None]


async def _read_batch(
    db: Database, pool: AdapterPool, outbox_ids: Sequence[int]
) -> tuple[list[Pending], list[_Push], dict[str, Message]]:
    """The pull rows, the push rows with their adapters (or why there is none), and the
    push rows' messages."""
    async with db.session() as session:
        pending = await load_pending(session, outbox_ids)
        pull: list[Pending] = []
        push: list[_Push] = []
        for p in pending:
            try:
                adapter = pool.get(p)
            except AdapterConfigError as exc:
                push.append((p, None, f"adapter configuration refused: {exc.detail}"))
                continue
            if adapter.pull:
                pull.append(p)
            else:
                push.append((p, adapter, None))
        messages: dict[str, Message] = {}
        if push:
            ids = [p.message_id for p, _, _ in push]
            rows = await session.scalars(select(Message).where(Message.id.in_(ids)))
            messages = {m.id: m for m in rows}
    return pull, push, messages


async def _push_all(
    node: NodeContext,
    push: list[_Push],
    messages: dict[str, Message],
    concurrency: int,
    adapter_timeout: float,
) -> list[PushOutcome]:
    gate = asyncio.Semaphore(concurrency)

    def outgoing(p: Pending) -> Outgoing:
        message = messages[p.message_id]
        return Outgoing(
            message_id=p.message_id,
            message_type=message.type,
            sender=message.sender_id,
            recipient=p.recipient_id,
            attempt=p.attempt,
            envelope=countersigned_envelope(node, message),
        )

    async def one(p: Pending, adapter: Adapter | None, refused: str | None) -> PushOutcome:
        started = utcnow()
        if adapter is None:
            return PushOutcome(p, DeliveryResult.reject(refused or "no adapter"), started, utcnow())
        async with gate:
            started = utcnow()
            try:
                result = await asyncio.wait_for(adapter.deliver(outgoing(p)), adapter_timeout)
            except TimeoutError:
                result = DeliveryResult.retry(f"no answer within {adapter_timeout:g} s")
            except Exception as exc:  # an adapter bug must not lose the batch: retry it
                log.exception("adapter raised", adapter=p.adapter, message_id=p.message_id)
                result = DeliveryResult.retry(f"adapter error: {type(exc).__name__}")
        return PushOutcome(p, result, started, utcnow())

    async def many(adapter: BatchAdapter, group: list[Pending]) -> list[PushOutcome]:
        """One call for a group bound to the same receiver; each row gets its own result."""
        async with gate:
            started = utcnow()
            try:
                results = await asyncio.wait_for(
                    adapter.deliver_many([outgoing(p) for p in group]), adapter_timeout
                )
                if len(results) != len(group):
                    raise RuntimeError(f"{len(results)} results for {len(group)} messages")
            except TimeoutError:
                results = [DeliveryResult.retry(f"no answer within {adapter_timeout:g} s")] * len(
                    group
                )
            except Exception as exc:  # an adapter bug must not lose the batch: retry it
                log.exception("adapter raised", adapter=group[0].adapter, messages=len(group))
                results = [DeliveryResult.retry(f"adapter error: {type(exc).__name__}")] * len(
                    group
                )
            finished = utcnow()
        return [PushOutcome(p, r, started, finished) for p, r in zip(group, results, strict=True)]

    singles: list[_Push] = []
    groups: dict[str, tuple[BatchAdapter, list[Pending]]] = {}
    for p, adapter, refused in push:
        if isinstance(adapter, BatchAdapter):
            groups.setdefault(adapter.batch_key, (adapter, []))[1].append(p)
        else:
            singles.append((p, adapter, refused))
    calls: list[Awaitable[list[PushOutcome]]] = []
    for adapter, rows in groups.values():
        # What is due now goes now, in calls of at most the adapter's batch size, spread over
        # up to ``concurrency`` calls of at least SPREAD_MIN rows, so that the receiver works
        # on them side by side rather than one long batch after another.
        calls_wanted = max(
            -(-len(rows) // adapter.batch_max_items), min(concurrency, -(-len(rows) // SPREAD_MIN))
        )
        size = max(1, -(-len(rows) // calls_wanted))
        calls += [many(adapter, rows[i : i + size]) for i in range(0, len(rows), size)]
    done = await asyncio.gather(*calls, *(_listed(one(*entry)) for entry in singles))
    by_row = {o.pending.outbox_id: o for outcomes in done for o in outcomes}
    return [by_row[p.outbox_id] for p, _, _ in push]


async def _listed(outcome: Awaitable[PushOutcome]) -> list[PushOutcome]:
    return [await outcome]


async def _check_receipts(
    session: AsyncSession, outcomes: list[PushOutcome], messages: dict[str, Message]
) -> tuple[list[PushOutcome], dict[str, tuple[str, str]]]:
    """Verify the receipts push receivers returned; a delivery whose receipt does not verify
    counts as failed (and is retried)."""
    receipts: dict[str, tuple[str, str]] = {}
    checked: list[PushOutcome] = []
    for outcome in outcomes:
        result = outcome.result
        if result.delivered and result.receipt is not None:
            message = messages[outcome.pending.message_id]
            try:
                receipts[message.id] = await verify_receipt(
                    session, message=message, raw=result.receipt
                )
            except PalermoError as exc:
                result = DeliveryResult.retry(f"receipt refused: {exc.detail}", **result.detail)
        checked.append(
            PushOutcome(outcome.pending, result, outcome.started_at, outcome.finished_at)
        )
    return checked, receipts


__all__ = [
    "AdapterPool",
    "BatchReport",
    "deliver_batch",
]
