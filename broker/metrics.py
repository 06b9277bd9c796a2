"""What operators watch, on ``GET /metrics``: the node's state read from the database at
scrape time, the api process's own counters (``broker.core.metrics``, request latency and
problems in ``broker.app``), and who may read them.

Invariants:
- A scrape runs a handful of cheap queries (primary-key or indexed lookups, and counts of the
  outbox and the sequencer queue, which stay small on a healthy node), within
  ``metrics_db_timeout_seconds``; past that, or on a database error, it answers without the
  database figures and ``palermo_metrics_database_up`` is 0. It never writes.
- Delivery attempts are counted from ``delivery_attempts`` by id: each scrape adds the rows
  written since the last one (at most ``ATTEMPTS_PER_SCRAPE``), so the counter is the
  node's total since this process started counting, whichever worker made the attempts.
- Fail closed: with ``metrics_token`` set, a scrape without ``Authorization: Bearer`` and
  that token is refused (401); in production without a token, ``/metrics`` does not exist.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.models import Case
from broker.core.db import Database, utcnow
from broker.core.errors import NotFound, Unauthenticated
from broker.core.logging import get_logger
from broker.core.settings import Settings
from broker.federation.models import FederationPeer
from broker.messages.models import DeliveryAttempt, OutboxEntry
from broker.oversight.models import AuditCheckpoint, AuditCosignature, AuditUnsequenced

log = get_logger("palermo.metrics")

ATTEMPTS_PER_SCRAPE = 50_000


@dataclass
class Snapshot:
    """The database figures of the last successful scrape (None: no such row yet)."""

    outbox_pending: int = 0
    outbox_oldest_age: float | None = None
    dead_letters: int = 0
    unsequenced: int = 0
    checkpoint_size: int | None = None
    checkpoint_age: float | None = None
    cosignature_age: float | None = None
    cases_overdue: int = 0
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    attempts_seen: int = 0  # the highest delivery_attempts.id counted
    # Per peer node: (directories refused so far, age of the last directory verified, or of
    # the peer's configuration if none has yet).
    peers: dict[str, tuple[int, float | None]] = field(default_factory=dict)


class NodeCollector(Collector):
    """The scrape-time figures of one api process (one per application)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.snapshot = Snapshot()
        self.database_up = False

    async def refresh(self) -> None:
        """Read the figures, within the timeout; on failure keep serving without them."""
        try:
            with anyio.fail_after(self.settings.metrics_db_timeout_seconds):
                async with self.db.session() as session:
                    await self._read(session)
            self.database_up = True
        except Exception as exc:
            self.database_up = False
            log.warning("metrics: database figures unavailable", error=type(exc).__name__)

    async def _read(self, session: AsyncSession) -> None:
        now = utcnow()
        snap = self.snapshot
        pending = OutboxEntry.dead_lettered_at.is_(None)
        row = (
            await session.execute(
                select(func.count(), func.min(OutboxEntry.created_at)).where(pending)
            )
        ).one()
        snap.outbox_pending = int(row[0])
        snap.outbox_oldest_age = _age(now, row[1])
        snap.dead_letters = int(
            await session.scalar(
                select(func.count()).where(OutboxEntry.dead_lettered_at.is_not(None))
            )
            or 0
        )
        snap.unsequenced = int(
            await session.scalar(select(func.count()).select_from(AuditUnsequenced)) or 0
        )
        checkpoint = (
            await session.execute(
                select(AuditCheckpoint.size, AuditCheckpoint.created_at)
                .order_by(AuditCheckpoint.size.desc())
                .limit(1)
            )
        ).first()
        snap.checkpoint_size = int(checkpoint[0]) if checkpoint else None
        snap.checkpoint_age = _age(now, checkpoint[1]) if checkpoint else None
        cosigned = await session.scalar(
            select(AuditCosignature.received_at).order_by(AuditCosignature.id.desc()).limit(1)
        )
        snap.cosignature_age = _age(now, cosigned)
        # An open case (no retention set: not closed, refused nor withdrawn) past its deadline.
        snap.cases_overdue = int(
            await session.scalar(
                select(func.count()).where(
                    Case.deadline < now, Case.retention_until.is_(None), Case.erased_at.is_(None)
                )
            )
            or 0
        )
        rows = await session.execute(
            select(
                DeliveryAttempt.adapter,
                DeliveryAttempt.outcome,
                func.count(),
                func.max(DeliveryAttempt.id),
            )
            .where(
                DeliveryAttempt.id > snap.attempts_seen,
                DeliveryAttempt.id <= snap.attempts_seen + ATTEMPTS_PER_SCRAPE,
            )
            .group_by(DeliveryAttempt.adapter, DeliveryAttempt.outcome)
        )
        seen = snap.attempts_seen
        for adapter, outcome, count, last in rows:
            key = (str(adapter), str(outcome))
            snap.attempts[key] = snap.attempts.get(key, 0) + int(count)
            seen = max(seen, int(last))
        snap.attempts_seen = seen
        peers = await session.execute(
            select(
                FederationPeer.node_id,
                FederationPeer.failures,
                func.coalesce(FederationPeer.synced_at, FederationPeer.created_at),
            )
        )
        snap.peers = {str(p): (int(f or 0), _age(now, at)) for p, f, at in peers}

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield _gauge(
            "palermo_metrics_database_up",
            "1 if this scrape read the database figures, 0 if it could not",
            1 if self.database_up else 0,
        )
        pool = self.db.engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if callable(checked_out):
            yield _gauge(
                "palermo_db_pool_in_use",
                "Database connections of this process's pool in use",
                int(checked_out()),
            )
        yield _gauge(
            "palermo_db_pool_size",
            "Connections this process keeps open (PALERMO_DB_POOL_SIZE)",
            self.settings.db_pool_size,
        )
        witnesses = len(self.settings.witness_urls.split(",")) if self.settings.witness_urls else 0
        yield _gauge("palermo_witnesses_configured", "Witnesses configured", witnesses)
        if not self.database_up:
            return
        yield _gauge("palermo_outbox_pending", "Outbox rows not yet delivered", snap.outbox_pending)
        if snap.outbox_oldest_age is not None:
            yield _gauge(
                "palermo_outbox_oldest_age_seconds",
                "Age of the oldest outbox row not yet delivered",
                snap.outbox_oldest_age,
            )
        yield _gauge("palermo_dead_letters", "Dead-lettered outbox rows", snap.dead_letters)
        yield _gauge(
            "palermo_audit_unsequenced",
            "Audit events not yet sequenced into the log (the sequencer's lag)",
            snap.unsequenced,
        )
        if snap.checkpoint_size is not None and snap.checkpoint_age is not None:
            yield _gauge(
                "palermo_audit_checkpoint_size",
                "Size of the latest checkpoint",
                snap.checkpoint_size,
            )
            yield _gauge(
                "palermo_audit_checkpoint_age_seconds",
                "Age of the latest signed checkpoint",
                snap.checkpoint_age,
            )
        if snap.cosignature_age is not None:
            yield _gauge(
                "palermo_witness_cosignature_age_seconds",
                "Age of the latest witness cosignature received",
                snap.cosignature_age,
            )
        yield _gauge("palermo_cases_overdue", "Open cases past their deadline", snap.cases_overdue)
        attempts = CounterMetricFamily(
            "palermo_delivery_attempts",
            "Delivery attempts by adapter and outcome (delivered, failed, rejected)",
            labels=["adapter", "outcome"],
        )
        for (adapter, outcome), count in sorted(snap.attempts.items()):
            attempts.add_metric([adapter, outcome], count)
        yield attempts
        refused = CounterMetricFamily(
            "palermo_federation_directory_refused",
            "Peer directories that failed to verify and changed nothing, by peer node",
            labels=["peer"],
        )
        age = GaugeMetricFamily(
            "palermo_federation_directory_age_seconds",
            "Time since a peer's directory last verified here (or since the peer was configured)",
            labels=["peer"],
        )
        for peer, (failures, synced) in sorted(snap.peers.items()):
            refused.add_metric([peer], failures)
            if synced is not None:
                age.add_metric([peer], synced)
        yield refused
        yield age


def _age(now: dt.datetime, then: dt.datetime | None) -> float | None:
    if then is None:
        return None
    if then.tzinfo is None:  # SQLite's aggregates come back naive
        then = then.replace(tzinfo=dt.UTC)
    return max(0.0, (now - then).total_seconds())


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class Metrics:
    """The ``/metrics`` endpoint's work: who may read, and what they read."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.settings = settings
        self.collector = NodeCollector(db, settings)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def check_access(self, authorization: str | None) -> None:
        """Raises NotFound (production without a token: metrics are disabled) or
        Unauthenticated (a token is set and the request does not carry it)."""
        token = self.settings.metrics_token
        if token is None:
            if self.settings.env == "production":
                raise NotFound("metrics are disabled: set PALERMO_METRICS_TOKEN to enable them")
            return
        scheme, _, presented = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected):
            raise Unauthenticated("/metrics needs the metrics bearer token")

    async def render(self) -> bytes:
        await self.collector.refresh()
        return generate_latest(REGISTRY) + generate_latest(self.registry)
