"""Alembic environment: the only way Palermo's schema is made, in tests too."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from broker.core.db import make_sync_engine
from broker.core.settings import Settings
from broker.migrations.models import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or Settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Switch SQLite's foreign key enforcement, outside any transaction (inside one the
    pragma does nothing)."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def run_migrations_online() -> None:
    engine = make_sync_engine(_url())
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        role = config.attributes.get("palermo_role")
        if role and not sqlite:
            # Session-wide: every object made below is owned by the owner role.
            quoted = connection.dialect.identifier_preparer.quote(role)
            connection.exec_driver_sql(f"SET ROLE {quoted}")
            connection.commit()
        if sqlite:
            # A batch migration rebuilds a table (copy, drop, rename). Dropping a table that
            # other tables' rows refer to (messages: outbox, inbox, terms) fails while foreign
            # keys are enforced, so they are off while migrating, and checked afterwards.
            _sqlite_foreign_keys(connection, on=False)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
        )
        try:
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration left rows with broken references: {broken}")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
