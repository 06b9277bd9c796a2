"""PostgreSQL roles and locks for a deployment: who the processes connect as, and the lock
that keeps a second scheduler (beat) from running.

Invariants:
- The api, worker and beat processes of a production node connect as a LOGIN role that is a
  member of ``palermo_app`` (migration 0002): never as a superuser, never as the owner of the
  schema's tables (or a member of that owner), and without CREATE on the schema.
  ``refuse_privileged_role`` checks it with one query and raises; it never repairs anything.
- ``ensure_app_login_role`` is idempotent: it creates the LOGIN role if missing, or sets its
  password and LOGIN again, and makes it a member of ``palermo_app``; it never grants more.
- ``hold_advisory_lock`` returns only once this process holds the session-level advisory
  lock; the lock lasts as long as the returned connection stays open.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

APP_ROLE = "palermo_app"
#: The advisory lock key of the scheduler (beat): any fixed 64-bit number, the same in
#: every process of a node (``'palermo beat'`` hashed would do as well; a constant is clearer).
BEAT_LOCK_KEY = 0x70616C_6265617401


class PrivilegedRoleError(RuntimeError):
    """The database role a process connects as may do more than the application needs."""


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (any driver) as a libpq connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


_ROLE_QUERY = """
SELECT current_user,
       r.rolsuper,
       r.rolcreaterole,
       EXISTS (
           SELECT 1 FROM pg_tables t
           WHERE t.schemaname = current_schema()
             AND pg_has_role(current_user, t.tableowner, 'USAGE')
       ) AS owns_tables,
       has_schema_privilege(current_user, current_schema(), 'CREATE') AS may_create,
       has_database_privilege(current_user, current_database(), 'CREATE') AS may_create_schema
FROM pg_roles r WHERE r.rolname = current_user
"""


def role_problems(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """What the connected role may do beyond the application's needs (empty: least privilege)."""
    row = conn.execute(_ROLE_QUERY).fetchone()
    if row is None:  # pragma: no cover - current_user is always in pg_roles
        return ["the connected role is not in pg_roles"]
    user, superuser, createrole, owns, may_create, may_create_schema = row
    problems = []
    if superuser:
        problems.append(f"{user} is a superuser")
    if createrole:
        problems.append(f"{user} may create roles (CREATEROLE)")
    if owns:
        problems.append(f"{user} owns (or is a member of the owner of) the schema's tables")
    if may_create:
        problems.append(f"{user} may create tables in the schema (CREATE)")
    if may_create_schema:
        problems.append(f"{user} may create schemas in the database (CREATE)")
    return problems


def refuse_privileged_role(url: str, *, process: str) -> None:
    """Raise PrivilegedRoleError unless the role of ``url`` has only the application's privileges.

    Raises PrivilegedRoleError (with what to do), or psycopg.Error if the database is unreachable:
    a production process that cannot check does not start (fail closed).
    """
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        problems = role_problems(conn)
    if problems:
        raise PrivilegedRoleError(
            f"{process} refuses to start in production: {'; '.join(problems)}. Connect the "
            f"api, worker and beat as a LOGIN role that is only a member of {APP_ROLE} "
            "(`palermo init --app-role NAME --app-password-file FILE` makes one) and run the "
            "migrations as the owner (PALERMO_MIGRATION_DATABASE_URL); see docs/operations.md"
        )


def ensure_app_login_role(
    conn: psycopg.Connection[tuple[object, ...]], name: str, password: str | None
) -> str:
    """Create (or bring back to LOGIN) ``name``, a member of palermo_app; return what was done.

    Raises psycopg.errors.InsufficientPrivilege when the connected role may not manage roles,
    and PrivilegedRoleError when ``name`` is a superuser or may create roles (it would never pass
    the production check, and init must not lower another role's powers silently).
    """
    ident = sql.Identifier(name)
    row = conn.execute(
        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", (name,)
    ).fetchone()
    if row is not None and (row[0] or row[1]):
        raise PrivilegedRoleError(f"role {name} exists and is a superuser or may create roles")
    verb = "updated" if row is not None else "created"
    if row is None:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
    else:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(ident))
    if password is not None:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), ident))
    return f"app role {name}: {verb}, LOGIN, member of {APP_ROLE}"


def prepare_owner_role(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str:
    """As a role that may manage roles: create the owner ``name`` (NOLOGIN) if missing, and
    ``palermo_app`` (which migration 0002 would otherwise create, and the owner may not),
    give the owner CONNECT and CREATE on the database and USAGE and CREATE on the schema,
    and let the connected role SET ROLE to it. Idempotent; return what was done.

    Raises PrivilegedRoleError when ``name`` is a superuser, or when the schema's tables are
    owned by another role (migrated before without an owner role: the owner could not alter
    them; ``REASSIGN OWNED`` them first), and psycopg.errors.InsufficientPrivilege when the
    connected role may not manage roles.
    """
    ident = sql.Identifier(name)
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if row is not None and row[0]:
        raise PrivilegedRoleError(f"owner role {name} exists and is a superuser")
    foreign = conn.execute(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = current_schema() "
        "AND tableowner <> %s ORDER BY 1",
        (name,),
    ).fetchall()
    if foreign:
        owners = ", ".join(str(r[0]) for r in foreign)
        raise PrivilegedRoleError(
            f"the schema's tables are owned by {owners}, not {name}: migrate without "
            f"--owner-role, or reassign them to {name} first (REASSIGN OWNED BY ... TO {name})"
        )
    verb = "updated" if row is not None else "created"
    if row is None:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident))
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
    if exists is None:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(APP_ROLE)))
    where = conn.execute(
        "SELECT current_database(), current_schema(), "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert where is not None
    database, schema_name, superuser = str(where[0]), str(where[1]), bool(where[2])
    schema = sql.Identifier(schema_name)
    conn.execute(
        sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(database), ident
        )
    )
    conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(schema, ident))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, sql.Identifier(APP_ROLE)))
    if not superuser:  # a superuser may SET ROLE to anyone; a CREATEROLE role needs this
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(ident))
    return f"owner role {name}: {verb}, NOLOGIN, owns what the migrations make"


def hold_advisory_lock(
    url: str,
    key: int,
    *,
    wait_seconds: float | None,
    poll_seconds: float = 2.0,
    on_wait: Callable[[], None] | None = None,
) -> psycopg.Connection[tuple[object, ...]] | None:
    """Take the session-level advisory lock ``key`` and return the connection that holds it
    (close it to release), or None if ``wait_seconds`` passed first (None: wait for ever).
    ``on_wait`` is called once, when the lock is found taken."""
    conn = psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10)
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    told = False
    try:
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is not None and row[0]:
                return conn
            if not told and on_wait is not None:
                on_wait()
                told = True
            if deadline is not None and time.monotonic() >= deadline:
                conn.close()
                return None
            time.sleep(
                poll_seconds
                if deadline is None
                else max(0.0, min(poll_seconds, deadline - time.monotonic()))
            )
    except BaseException:
        conn.close()
        raise
