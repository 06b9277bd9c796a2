"""The application role on PostgreSQL: INSERT and SELECT only on audit tables, enough to run
the node (migration 0002; AUDIT.md "What the database can and cannot promise").

These tests need a PostgreSQL server whatever PALERMO_TEST_DB says: roles are PostgreSQL's.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from audit import Ed25519Verifier, verify_bundle
from broker.core import migrate
from broker.core.context import Actor, node_context
from broker.core.db import Database
from broker.core.settings import Settings
from broker.oversight import service
from broker.oversight.sequencer import log_signer
from broker.oversight.tasks import sequence_all
from broker.participants import service as participants
from tests.conftest import PG_URL, make_settings, need_service

APP_ROLE = "palermo_app"


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A database of its own, migrated by the owner (the superuser the tests connect as)."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"palermo_roles_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate.upgrade(f"{PG_URL}/{name}")
        yield name
    finally:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _guarded_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Every table the append-only trigger guards (audit tables and any other)."""
    rows = conn.execute(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgfoid = 'palermo_refuse_change'::regproc ORDER BY 1"
    ).fetchall()
    return [str(row[0]) for row in rows]


def test_the_app_role_may_not_change_audit_tables(pg_database: str) -> None:
    with psycopg.connect(f"{PG_URL}/{pg_database}", autocommit=True) as conn:
        tables = _guarded_tables(conn)
        assert {"audit_events", "audit_log", "audit_nodes", "audit_checkpoints"} <= set(tables)
        assert {"audit_entry_parties", "audit_entry_cases", "audit_cosignatures"} <= set(tables)
        conn.execute(f"SET ROLE {APP_ROLE}")
        for table in tables:
            for statement in (
                f"UPDATE {table} SET {_first_column(conn, table)} = {_first_column(conn, table)}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
            ):
                # Refused by privilege, before any trigger: even with the triggers disabled.
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                    conn.execute(statement)
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        # The queue may be consumed, the rest of the schema changed, the schema version not.
        conn.execute("DELETE FROM audit_unsequenced WHERE event_ref < 0")
        conn.execute("UPDATE messages SET status = status WHERE false")
        conn.execute("DELETE FROM outbox WHERE false")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE alembic_version SET version_num = version_num")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE audit_unsequenced SET event_ref = event_ref")


def _first_column(conn: psycopg.Connection[tuple[object, ...]], table: str) -> str:
    row = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position LIMIT 1",
        (table,),
    ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def login_role(pg_database: str) -> Iterator[str]:
    """A LOGIN role that is a member of palermo_app, as a deployment would connect with."""
    name = f"palermo_api_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE palermo_app").format(sql.Identifier(name))
        )
    try:
        yield name
    finally:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_member_of_the_app_role_records_sequences_and_exports(
    pg_database: str, login_role: str, tmp_path: Path
) -> None:
    host = PG_URL.split("@", 1)[1]
    url = f"postgresql://{login_role}@{host}/{pg_database}"
    world = {
        "PALERMO_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PALERMO_NODE_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PALERMO_TOKEN_SECRET": base64.b64encode(secrets.token_bytes(48)).decode(),
    }
    settings: Settings = make_settings(url, tmp_path, world)

    async def go() -> bytes:
        db = Database(url, pool_size=2)
        try:
            async with db.session() as session:
                await participants.register_participant(
                    session,
                    node=node_context(settings),
                    participant_id="pt.pj",
                    kind="police",
                    display_name="Policia Judiciaria",
                    actor=Actor(None, "role-test"),
                )
                await session.commit()
            added, last = await sequence_all(
                db, origin=settings.node_id, seed=settings.node_signing_seed, batch_size=100
            )
            assert added >= 1
            assert last is not None
            async with db.session() as session:
                plan = await service.plan_export(session, size=None, consistency_from=[1])
            chunks = [chunk async for chunk in service.export_bundle(db.session, plan)]
            return b"".join(chunks)
        finally:
            await db.dispose()

    bundle_path = tmp_path / "bundle.jsonl"
    bundle_path.write_bytes(asyncio.run(go()))
    verifier: Ed25519Verifier = log_signer(settings.node_id, settings.node_signing_seed).verifier()
    with bundle_path.open("rb") as handle:
        verdict = verify_bundle(handle, verifier)
    assert verdict.checkpoint.size >= 1
    assert verdict.proofs_checked == 1
