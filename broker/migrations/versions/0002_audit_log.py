"""The verifiable audit log: sequenced entries, subtree hashes, checkpoints, cosignatures.

Tables (see ``broker/oversight/models.py``):

- ``audit_unsequenced``: the sequencer's queue. An AFTER INSERT trigger on ``audit_events``
  adds every new event in the event's own transaction, so no leaf can be written without
  being queued; the sequencer deletes the rows it has sequenced.
- ``audit_log`` (index -> event, leaf hash), ``audit_nodes`` (perfect-subtree hashes, the
  storage model of ``audit.merkle``), ``audit_entry_parties`` (which participant may see an
  entry), ``audit_checkpoints`` (signed C2SP checkpoints), ``audit_cosignatures`` (witness
  cosignatures): append-only, with the same triggers as ``audit_events`` (PostgreSQL: row
  and TRUNCATE triggers enabled ALWAYS; SQLite: abort triggers).

PostgreSQL only: the NOLOGIN role ``palermo_app`` (created if missing) gets SELECT and INSERT
on the audit tables and nothing more, SELECT/INSERT/UPDATE/DELETE on the other tables,
SELECT/INSERT/DELETE on the queue, and USAGE on the sequences. Any other table guarded by
``palermo_refuse_change`` when this runs (append-only tables of other branches) gets INSERT
and SELECT only as well. Default privileges extend SELECT/INSERT/UPDATE/DELETE to tables that
later migrations create, so a migration that adds an append-only table after this one must
revoke UPDATE, DELETE and TRUNCATE on it itself. A deployment runs the migrations as the owner and connects the api,
worker and beat processes as a LOGIN role that is a member of ``palermo_app``. If the
migrating role may not create roles, the migration warns and leaves the grants to the DBA.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broker.migrations.append_only import append_only

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "palermo_app"
APPEND_ONLY_TABLES = (
    "audit_log",
    "audit_nodes",
    "audit_entry_parties",
    "audit_checkpoints",
    "audit_cosignatures",
)
AUDIT_TABLES = ("audit_events", *APPEND_ONLY_TABLES)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enqueue_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION palermo_enqueue_audit_events() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO audit_unsequenced (event_ref) SELECT id FROM new_events;
                RETURN NULL;
            END $$;
            CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events
                REFERENCING NEW TABLE AS new_events
                FOR EACH STATEMENT EXECUTE FUNCTION palermo_enqueue_audit_events();
            ALTER TABLE audit_events ENABLE ALWAYS TRIGGER audit_events_enqueue;
            """
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_events_enqueue AFTER INSERT ON audit_events "
            "BEGIN INSERT INTO audit_unsequenced (event_ref) VALUES (NEW.id); END"
        )
    op.execute("INSERT INTO audit_unsequenced (event_ref) SELECT id FROM audit_events")


def _app_role() -> None:
    """Create palermo_app if missing and grant it what the application needs, no more."""
    audit = ", ".join(AUDIT_TABLES)
    op.execute(
        f"""
        DO $$
        DECLARE
            schema_name text := current_schema();
            guarded record;
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                BEGIN
                    CREATE ROLE {APP_ROLE} NOLOGIN;
                EXCEPTION
                    WHEN duplicate_object OR unique_violation THEN NULL;  -- created meanwhile
                    WHEN insufficient_privilege THEN
                        RAISE WARNING 'cannot create role {APP_ROLE}: create it, then grant '
                            'as in migration 0002 (see docs/audit.md)';
                        RETURN;
                END;
            END IF;
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', schema_name);
            EXECUTE format(
                'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO {APP_ROLE}',
                schema_name);
            EXECUTE format(
                'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {APP_ROLE}', schema_name);
            EXECUTE format(
                'ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}', schema_name);
            EXECUTE format(
                'ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                'GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}', schema_name);
            REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {audit} FROM {APP_ROLE};
            -- Any other append-only table (one that palermo_refuse_change guards) that a
            -- migration of another branch already made: INSERT and SELECT only, too.
            FOR guarded IN
                SELECT DISTINCT t.tgrelid::regclass AS name FROM pg_trigger t
                JOIN pg_class c ON c.oid = t.tgrelid
                WHERE t.tgfoid = 'palermo_refuse_change'::regproc
                  AND c.relnamespace = schema_name::regnamespace
            LOOP
                EXECUTE format(
                    'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %s FROM {APP_ROLE}',
                    guarded.name);
            END LOOP;
            REVOKE UPDATE, TRUNCATE, REFERENCES, TRIGGER ON audit_unsequenced FROM {APP_ROLE};
            REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {APP_ROLE};
        END $$;
        """
    )


def upgrade() -> None:
    op.create_table(
        "audit_unsequenced",
        sa.Column("event_ref", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("event_ref", name=op.f("pk_audit_unsequenced")),
    )
    op.create_table(
        "audit_log",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_ref", _big_id(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sequenced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_ref"], ["audit_events.id"], name=op.f("fk_audit_log_event_ref_audit_events")
        ),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("event_ref", name=op.f("uq_audit_log_event_ref")),
    )
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_nodes")),
    )
    op.create_table(
        "audit_entry_parties",
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("participant_id", "idx", name=op.f("pk_audit_entry_parties")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_cosignatures",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("witness_name", sa.String(length=255), nullable=False),
        sa.Column("witness_key_id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("witness_url", sa.String(length=2000), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_size"],
            ["audit_checkpoints.size"],
            name=op.f("fk_audit_cosignatures_checkpoint_size_audit_checkpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_cosignatures")),
        sa.UniqueConstraint(
            "checkpoint_size",
            "witness_name",
            "witness_key_id",
            name=op.f("uq_audit_cosignatures_checkpoint_size"),
        ),
    )
    with op.batch_alter_table("audit_cosignatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_cosignatures_checkpoint_size"), ["checkpoint_size"], unique=False
        )

    _enqueue_trigger()
    for table in APPEND_ONLY_TABLES:
        append_only(table)
    if op.get_bind().dialect.name == "postgresql":
        _app_role()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_enqueue ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS palermo_enqueue_audit_events()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_enqueue")
    with op.batch_alter_table("audit_cosignatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_cosignatures_checkpoint_size"))
    for table in (
        "audit_cosignatures",
        "audit_checkpoints",
        "audit_entry_parties",
        "audit_nodes",
        "audit_log",
        "audit_unsequenced",
    ):
        op.drop_table(table)
