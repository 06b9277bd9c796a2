"""What the benchmarks share: a scratch PostgreSQL database, a free port, percentiles, and
participants registered as a node's operator would register them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Actor, NodeContext
from broker.participants import service as participants
from tests.support.processes import free_port

__all__ = ["admin", "bench_database", "free_port", "percentile", "register_parties"]


def admin(pg_url: str, sql: str) -> None:
    """Run one statement on the server's ``postgres`` database, outside a transaction."""
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(sql.encode())


@contextlib.contextmanager
def bench_database(pg_url: str) -> Iterator[tuple[str, str]]:
    """A fresh ``palermo_bench_<random>`` database (name, URL), dropped afterwards even if
    sessions are still connected."""
    name = f"palermo_bench_{uuid.uuid4().hex[:10]}"
    admin(pg_url, f'CREATE DATABASE "{name}"')
    try:
        yield name, f"{pg_url}/{name}"
    finally:
        admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped database {name}")


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in percent (50, 99, 100); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


async def register_parties(
    session: AsyncSession,
    *,
    node: NodeContext,
    parties: Iterable[tuple[str, str, str]],
    actor: Actor,
) -> None:
    """Register each (id, kind, display name) with a generated custodial signing key and
    encryption key, in the caller's transaction."""
    for pid, kind, name in parties:
        await participants.register_participant(
            session, node=node, participant_id=pid, kind=kind, display_name=name, actor=actor
        )
        for purpose in ("signing", "encryption"):
            await participants.add_key(
                session,
                node=node,
                participant_id=pid,
                purpose=purpose,
                public_key=None,
                generate=True,
                actor=actor,
            )
