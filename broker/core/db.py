"""Database access: SQLAlchemy 2 on PostgreSQL (psycopg 3) or SQLite (WAL).

Invariants:
- The schema is made only by Alembic migrations (``broker/migrations``), tests included.
- One transaction per request or task, owned by the endpoint or task: services flush, never
  commit.
- On SQLite every transaction starts with ``BEGIN IMMEDIATE``, so two processes (api and worker)
  never deadlock upgrading a read lock; ``busy_timeout`` makes writers queue instead of failing.
- Datetimes are timezone-aware UTC on both backends.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy import DateTime, MetaData, TextClause, bindparam, create_engine, event, text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator, TypeEngine

from broker.core.errors import SchemaViolation

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that refuses naive datetimes and always comes back aware, in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: legal deadlines need a time zone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sync_url(url: str) -> str:
    """The URL for synchronous use (Alembic, scripts): psycopg 3 or pysqlite."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use postgresql or sqlite")


def async_url(url: str) -> str:
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use postgresql or sqlite")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted content (erased at the end of retention) is overwritten with zeros, not
        # left in free pages (docs/retention.md).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def refuse_nul(parameters: Any) -> None:
    """Raise SchemaViolation naming the parameter if a text value holds NUL (U+0000).

    PostgreSQL text cannot hold NUL (psycopg raises DataError, which was a 500), and SQLite
    would store it; checked before every statement on both, so any endpoint refuses it the
    same way, with a 4xx, before anything is written."""
    if isinstance(parameters, Mapping):
        for name, value in parameters.items():
            if isinstance(value, str) and "\x00" in value:
                raise SchemaViolation(f"{name}: text cannot contain NUL (U+0000)", field=name)
    elif isinstance(parameters, (list, tuple)):
        for value in parameters:
            if isinstance(value, str):
                if "\x00" in value:
                    raise SchemaViolation("text cannot contain NUL (U+0000)")
            elif isinstance(value, (Mapping, list, tuple)):
                refuse_nul(value)


def _refuse_nul_setup(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        refuse_nul(parameters)


def make_sync_engine(url: str, **kwargs: Any) -> Engine:
    surl = sync_url(url)
    if is_sqlite(url):
        engine = create_engine(surl, poolclass=NullPool, **kwargs)
        _sqlite_setup(engine)
    else:
        engine = create_engine(surl, pool_pre_ping=True, **kwargs)
    _refuse_nul_setup(engine)
    return engine


def make_async_engine(
    url: str, *, pool_size: int = 10, max_overflow: int | None = None
) -> AsyncEngine:
    """``max_overflow`` connections beyond ``pool_size`` (default: as many again) are opened
    under bursts and closed when they come back to a full pool, so a pool smaller than the
    requests usually in flight opens and closes a connection per request."""
    aurl = async_url(url)
    if is_sqlite(url):
        engine = create_async_engine(aurl, pool_size=pool_size, max_overflow=0)
        _sqlite_setup(engine.sync_engine)
    else:
        engine = create_async_engine(
            aurl,
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_pre_ping=False,
        )
    _refuse_nul_setup(engine.sync_engine)
    return engine


class Database:
    """An async engine and its session factory; one per process (api, worker, CLI)."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> None:
        self.url = url
        self.engine = make_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction the caller commits; anything uncommitted rolls back."""
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


_NAMED_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class HotStatement:
    """One SQL statement of a hot path (ingress, authentication), written once with ``:name``
    parameters and positional result columns.

    On PostgreSQL it runs on the session's own psycopg connection, inside the session's
    transaction, skipping SQLAlchemy's execution layer: that layer costs about 0.15 ms of CPU
    per statement, more than psycopg itself (``bench/README.md``). On SQLite it runs through
    SQLAlchemy as a typed ``text()`` statement, so datetimes and JSON convert as everywhere
    else. Rows are tuples in the order of the SELECT list on both.

    ``params`` names the parameters that need a SQLAlchemy type on SQLite (datetimes, JSON);
    ``columns`` the result columns that do. On PostgreSQL neither applies: values are what
    psycopg makes of them (``timestamptz`` comes back aware but in the session's time zone,
    ``json`` parsed, ``bytea`` as bytes), and errors are psycopg's, not SQLAlchemy's.
    """

    __slots__ = ("clause", "pg_sql")

    def __init__(
        self,
        sql: str,
        *,
        params: Mapping[str, TypeEngine[Any]] | None = None,
        columns: Mapping[str, TypeEngine[Any]] | None = None,
    ) -> None:
        if "%" in sql:
            raise ValueError("write % as a parameter: psycopg reads it as a placeholder")
        self.pg_sql = _NAMED_PARAM.sub(r"%(\1)s", sql).encode()
        clause: TextClause = text(sql)
        if params:
            clause = clause.bindparams(*(bindparam(k, type_=t) for k, t in params.items()))
        self.clause: Executable = clause.columns(**columns) if columns else clause

    async def rows(self, session: AsyncSession, values: Mapping[str, Any]) -> Sequence[Any]:
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            refuse_nul(values)  # elsewhere the engine's before_cursor_execute hook checks
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            try:
                async with raw.cursor() as cursor:
                    await cursor.execute(self.pg_sql, values)
                    rows: list[Any] = await cursor.fetchall() if cursor.description else []
            except psycopg.Error:
                # SQLAlchemy does not see this error: tell its pool the connection is lost,
                # so it is not handed out again.
                if raw.broken:
                    await connection.invalidate()
                raise
            return rows
        result = await connection.execute(self.clause, dict(values))
        return result.all() if result.returns_rows else []
