"""Least privilege on PostgreSQL (docs/operations.md, "Database roles"): ``palermo init``
migrates as the owner and makes the app login role, idempotently; that role may insert and
read the audit tables but not change them nor make tables; production refuses to start as a
superuser or as the owner; a second beat waits for (or gives up on) the beat lock.

These tests need a PostgreSQL server whatever PALERMO_TEST_DB says: roles are PostgreSQL's.
Roles are cluster-wide, so each test names its own and drops it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from broker.cli import main
from broker.core import dbroles
from broker.core.settings import ConfigurationError, Settings, write_secret_files
from tests.conftest import PG_URL, need_service

HOST = PG_URL.split("@", 1)[1]


def _admin(statement: sql.Composed) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """An empty database, dropped afterwards, with the roles the test made."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"palermo_dbroles_{secrets.token_hex(4)}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def role_name() -> Iterator[str]:
    name = f"palermo_api_{secrets.token_hex(4)}"
    yield name
    _admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def node_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for key in list(os.environ):
        if key.startswith("PALERMO_"):
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("PALERMO_DATA_DIR", str(data))
    return data


def _production(monkeypatch: pytest.MonkeyPatch, data: Path, url: str) -> None:
    write_secret_files(data)
    monkeypatch.setenv("PALERMO_ENV", "production")
    monkeypatch.setenv("PALERMO_DATABASE_URL", url)
    monkeypatch.setenv("PALERMO_PUBLIC_URL", "https://palermo.example.org")
    monkeypatch.setenv("PALERMO_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _init(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: str, role: str
) -> str:
    """``palermo init`` as the owner (the superuser here), making the app login role."""
    data = Path(str(Settings().data_dir))
    data.mkdir(parents=True, exist_ok=True)
    password = data.parent / "app-password"
    password.write_text(secrets.token_urlsafe(24) + "\n")
    monkeypatch.setenv("PALERMO_MIGRATION_DATABASE_URL", f"{PG_URL}/{db}")
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"postgresql://{role}@{HOST}/{db}")
    code = main(["init", "--app-role", role, "--app-password-file", str(password)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_init_migrates_as_owner_and_makes_the_app_role_idempotently(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    fresh_db: str,
    role_name: str,
) -> None:
    first = _init(capsys, monkeypatch, fresh_db, role_name)
    assert "migrated as postgres (the owner of the schema)" in first
    assert f"app role {role_name}: created, LOGIN, member of palermo_app" in first
    assert "PALERMO_DATABASE_URL: least privilege" in first
    second = _init(capsys, monkeypatch, fresh_db, role_name)
    assert f"app role {role_name}: updated, LOGIN, member of palermo_app" in second
    with psycopg.connect(f"{PG_URL}/{fresh_db}") as conn:
        row = conn.execute(
            "SELECT r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolpassword IS NOT NULL, "
            "array(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "      WHERE m.member = r.oid) FROM pg_authid r WHERE r.rolname = %s",
            (role_name,),
        ).fetchone()
    assert row == (True, False, False, True, ["palermo_app"])


def test_init_without_a_migration_url_warns(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    fresh_db: str,
) -> None:
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"{PG_URL}/{fresh_db}")
    assert main(["init"]) == 0
    assert "production refuses" in capsys.readouterr().out


def test_the_app_login_role_inserts_and_reads_audit_but_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    fresh_db: str,
    role_name: str,
) -> None:
    _init(capsys, monkeypatch, fresh_db, role_name)
    with psycopg.connect(f"postgresql://{role_name}@{HOST}/{fresh_db}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_events (event_id, kind, created_at, leaf) "
            "VALUES (gen_random_uuid()::text, 'test:insert', now(), '\\x00')"
        )
        count = conn.execute("SELECT count(*) FROM audit_events").fetchone()
        assert count is not None
        assert count[0] >= 1
        for table in ("audit_events", "audit_log", "audit_checkpoints", "audit_cosignatures"):
            for statement in (
                f"UPDATE {table} SET created_at = created_at"
                if table == "audit_events"
                else f"DELETE FROM {table}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        for ddl in (
            "CREATE TABLE sneaky (id int)",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "DROP TABLE audit_log",
            "CREATE SCHEMA sneaky",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
        assert dbroles.role_problems(conn) == []


def test_production_refuses_a_superuser_and_the_owner(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    fresh_db: str,
    role_name: str,
) -> None:
    _init(capsys, monkeypatch, fresh_db, role_name)
    _production(monkeypatch, node_env, f"{PG_URL}/{fresh_db}")
    for command in (["serve"], ["worker"], ["beat"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "refuses to start in production: postgres is a superuser" in err
    with pytest.raises(ConfigurationError, match="superuser"):
        Settings().check_database_role("the api")

    owner = f"{role_name}_owner"
    _admin(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
    try:
        with psycopg.connect(f"{PG_URL}/{fresh_db}", autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER TABLE messages OWNER TO {}").format(sql.Identifier(owner)))
        monkeypatch.setenv("PALERMO_DATABASE_URL", f"postgresql://{owner}@{HOST}/{fresh_db}")
        with pytest.raises(ConfigurationError, match="owns"):
            Settings().check_database_role("the api")
    finally:
        with psycopg.connect(f"{PG_URL}/{fresh_db}", autocommit=True) as conn:
            conn.execute("ALTER TABLE messages OWNER TO postgres")
        _admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))

    # The app role passes; a node that cannot reach the database to check does not start.
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"postgresql://{role_name}@{HOST}/{fresh_db}")
    Settings().check_database_role("the api")
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"postgresql://{role_name}@127.0.0.1:1/{fresh_db}")
    with pytest.raises(ConfigurationError, match="cannot check"):
        Settings().check_database_role("the api")


def test_a_second_beat_waits_for_the_lock_and_gives_up(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    fresh_db: str,
    role_name: str,
) -> None:
    _init(capsys, monkeypatch, fresh_db, role_name)
    app_url = f"postgresql://{role_name}@{HOST}/{fresh_db}"
    _production(monkeypatch, node_env, app_url)
    first = dbroles.hold_advisory_lock(app_url, dbroles.BEAT_LOCK_KEY, wait_seconds=0)
    assert first is not None
    try:
        assert main(["beat", "--lock-wait", "0.5"]) == 3
        err = capsys.readouterr().err
        assert "another beat holds the beat lock; waiting" in err
        assert "refusing to run a second scheduler" in err
        assert dbroles.hold_advisory_lock(app_url, dbroles.BEAT_LOCK_KEY, wait_seconds=0) is None
    finally:
        first.close()
    # Released with the first beat's connection: the next one takes it at once.
    second = dbroles.hold_advisory_lock(app_url, dbroles.BEAT_LOCK_KEY, wait_seconds=2)
    assert second is not None
    second.close()


@pytest.fixture
def owner_role(fresh_db: str) -> Iterator[str]:
    name = f"palermo_owner_{secrets.token_hex(4)}"
    yield name
    # Its objects live in the test's database only: drop them there, then the role.
    with psycopg.connect(f"{PG_URL}/{fresh_db}", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if exists:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    _admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_init_makes_the_owner_and_migrates_as_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    owner_role: str,
    role_name: str,
    fresh_db: str,
) -> None:
    monkeypatch.setenv("PALERMO_MIGRATION_DATABASE_URL", f"{PG_URL}/{fresh_db}")
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"postgresql://{role_name}@{HOST}/{fresh_db}")
    argv = ["init", "--owner-role", owner_role, "--app-role", role_name]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"owner role {owner_role}: created, NOLOGIN" in out
    assert f"migrated as {owner_role} (the owner of the schema)" in out
    assert "PALERMO_DATABASE_URL: least privilege" in out
    assert main(argv) == 0  # again: nothing to migrate, both roles kept
    out = capsys.readouterr().out
    assert f"owner role {owner_role}: updated" in out
    assert f"app role {role_name}: updated" in out
    with psycopg.connect(f"{PG_URL}/{fresh_db}") as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(owner_role,)]
        row = conn.execute(
            "SELECT rolsuper, rolcanlogin, rolcreaterole FROM pg_roles WHERE rolname = %s",
            (owner_role,),
        ).fetchone()
        assert row == (False, False, False)
    # The app role still may not change the audit tables the owner made.
    with psycopg.connect(f"postgresql://{role_name}@{HOST}/{fresh_db}", autocommit=True) as conn:
        assert dbroles.role_problems(conn) == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM audit_events")
        conn.execute("SELECT count(*) FROM messages")


def test_init_refuses_an_owner_role_over_tables_someone_else_owns(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    owner_role: str,
    fresh_db: str,
) -> None:
    monkeypatch.setenv("PALERMO_MIGRATION_DATABASE_URL", f"{PG_URL}/{fresh_db}")
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"{PG_URL}/{fresh_db}")
    assert main(["init"]) == 0  # migrated as the superuser: it owns the tables
    capsys.readouterr()
    assert main(["init", "--owner-role", owner_role]) == 2
    assert "owned by postgres" in capsys.readouterr().err


def test_the_api_refuses_to_start_as_a_superuser_in_production(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node_env: Path,
    fresh_db: str,
    role_name: str,
) -> None:
    """However uvicorn starts the app (palermo serve, or uvicorn itself): its lifespan checks."""
    from fastapi.testclient import TestClient

    from broker.app import create_app

    _init(capsys, monkeypatch, fresh_db, role_name)
    _production(monkeypatch, node_env, f"{PG_URL}/{fresh_db}")
    app = create_app(Settings())
    with pytest.raises(ConfigurationError, match="superuser"), TestClient(app):
        pass
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"postgresql://{role_name}@{HOST}/{fresh_db}")
    with TestClient(create_app(Settings())) as client:
        assert client.get("/healthz").status_code == 200
