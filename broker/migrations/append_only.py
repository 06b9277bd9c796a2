"""What makes a table append-only, for every migration that creates one.

On PostgreSQL: BEFORE UPDATE/DELETE row triggers and a BEFORE TRUNCATE statement trigger call
``palermo_refuse_change()`` (created by revision 0001), enabled ALWAYS so that
``session_replication_role`` does not skip them; and if the application role ``palermo_app``
exists already (revision 0002 makes it), it loses UPDATE, DELETE and TRUNCATE on the table, so
the guarantee does not depend on the order in which branches of the schema are applied.
On SQLite: triggers that abort UPDATE and DELETE (SQLite has no TRUNCATE).
"""

from __future__ import annotations

from alembic import op

APP_ROLE = "palermo_app"


def append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Table names come from the migrations' own constants, never from input.
        op.execute(
            f"""
            CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION palermo_refuse_change();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION palermo_refuse_change();
            ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_update;
            ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate;
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP_ROLE}';
                END IF;
            END $$;
            """
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )
