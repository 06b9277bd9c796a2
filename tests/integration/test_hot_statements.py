"""The ingress path's SQL statements (``broker.core.db.HotStatement``) on the test database:
they run inside the session's transaction and convert types as the ORM does. Runs on SQLite
and on PostgreSQL (``PALERMO_TEST_DB``); the statements of ingress itself are exercised by
``test_messages.py`` and ``test_faults.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import psycopg
import pytest
from sqlalchemy import JSON, String, text
from sqlalchemy.engine import Engine

from broker.core.db import Database, HotStatement, UTCDateTime
from broker.core.settings import Settings
from tests.conftest import count_rows

COUNT_PARTICIPANTS = HotStatement("SELECT count(*) FROM participants WHERE id = :id")
KEY_TIMES = HotStatement(
    "SELECT kid, not_before, not_after FROM participant_keys WHERE participant_id = :pid",
    columns={"kid": String(), "not_before": UTCDateTime(), "not_after": UTCDateTime()},
)
ROLES = HotStatement(
    "SELECT roles FROM accounts WHERE participant_id = :pid", columns={"roles": JSON()}
)
INSERT_PARTICIPANT = HotStatement(
    "INSERT INTO participants (id, kind, jurisdiction, display_name, status, adapter, "
    "adapter_config, created_at) VALUES (:id, 'police', 'fr', 'Test', 'active', 'inbox', "
    "'{}', :created_at)",
    params={"created_at": UTCDateTime()},
)


def run(settings: Settings, work: Any) -> Any:
    async def go() -> Any:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_the_parameters_are_converted_for_psycopg_and_casts_are_left_alone() -> None:
    s = HotStatement("SELECT CAST(:a AS json), :b::text, x FROM t WHERE y = :a_2")
    assert s.pg_sql == b"SELECT CAST(%(a)s AS json), %(b)s::text, x FROM t WHERE y = %(a_2)s"


def test_a_percent_sign_is_refused_because_psycopg_reads_it_as_a_placeholder() -> None:
    with pytest.raises(ValueError, match="%"):
        HotStatement("SELECT 1 WHERE 'a' LIKE 'a%'")


def test_rows_come_back_as_tuples_with_aware_datetimes_and_parsed_json(
    settings: Settings,
) -> None:
    async def work(session: Any) -> Any:
        count = await COUNT_PARTICIPANTS.rows(session, {"id": "de.bka"})
        keys = await KEY_TIMES.rows(session, {"pid": "de.bka"})
        roles = await ROLES.rows(session, {"pid": "de.bka"})
        return count, keys, roles

    count, keys, roles = run(settings, work)
    assert count == [(1,)]
    assert keys
    for kid, not_before, _ in keys:
        assert kid
        assert isinstance(not_before, dt.datetime)
        assert not_before.utcoffset() == dt.timedelta(0)
    assert roles
    assert all(isinstance(r[0], list) and r[0] for r in roles)


def test_a_statement_runs_in_the_session_transaction_and_rolls_back_with_it(
    settings: Settings, sync_engine: Engine
) -> None:
    now = dt.datetime.now(dt.UTC)

    async def rolled_back(session: Any) -> None:
        await INSERT_PARTICIPANT.rows(session, {"id": "fr.police", "created_at": now})
        assert await COUNT_PARTICIPANTS.rows(session, {"id": "fr.police"}) == [(1,)]
        await session.rollback()

    run(settings, rolled_back)
    assert count_rows(sync_engine, "participants", "id = :id", id="fr.police") == 0

    async def committed(session: Any) -> None:
        await INSERT_PARTICIPANT.rows(session, {"id": "fr.police", "created_at": now})
        await session.commit()

    run(settings, committed)
    assert count_rows(sync_engine, "participants", "id = :id", id="fr.police") == 1


def test_a_connection_lost_under_a_statement_is_not_handed_out_again(
    settings: Settings, sync_engine: Engine
) -> None:
    """The raw psycopg path bypasses SQLAlchemy's disconnect handling, so it tells the pool
    itself; the next session gets a working connection."""
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL backend is terminated; SQLite has none")
    backend_pid = HotStatement("SELECT pg_backend_pid()")

    async def go() -> tuple[bool, list[Any]]:
        db = Database(settings.resolved_database_url, pool_size=1, max_overflow=0)
        try:
            async with db.session() as session:
                [(pid,)] = await backend_pid.rows(session, {})
                with sync_engine.connect() as conn:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                with pytest.raises(psycopg.OperationalError):
                    await backend_pid.rows(session, {})
                invalidated = (await session.connection()).invalidated
            async with db.session() as session:
                return invalidated, list(await backend_pid.rows(session, {}))
        finally:
            await db.dispose()

    invalidated, rows = asyncio.run(go())
    assert invalidated
    assert len(rows) == 1
