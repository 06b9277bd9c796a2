"""Operator commands: init, participant, key, user, client, audit verify."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.client import EncryptionKeyFile, KeyFile
from broker.core import dbroles, migrate
from broker.core.context import Actor, NodeContext, node_context
from broker.core.db import Database
from broker.core.errors import PalermoError
from broker.core.roles import PERSON_ROLES, Role
from broker.core.settings import ConfigurationError, Settings, write_secret_files
from broker.participants import service as participants
from broker.participants.models import ParticipantKind
from broker.policy.service import node_policy, record_policy_loaded

T = TypeVar("T")


class CommandError(Exception):
    """A command could not do what was asked; the message says why."""


def cli_actor() -> Actor:
    return Actor(None, f"cli:{getpass.getuser()}")


def run_in_session(
    settings: Settings,
    fn: Callable[[AsyncSession, NodeContext], Awaitable[T]],
    *,
    url: str | None = None,
) -> T:
    """Run ``fn`` in one transaction, committed when it returns, connected to ``url``
    (default: PALERMO_DATABASE_URL). Raises CommandError."""

    async def go() -> T:
        db = Database(url or settings.resolved_database_url, pool_size=1)
        try:
            async with db.session() as session:
                result = await fn(session, node_context(settings))
                await session.commit()
                return result
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except (PalermoError, ConfigurationError) as exc:
        raise CommandError(str(exc)) from exc


def sqlite_files(settings: Settings) -> list[Path]:
    """The SQLite database files the node uses (its database, and the Celery broker and
    result store when they are SQLite), whatever the driver in the URL."""
    files: list[Path] = []
    urls = (
        settings.resolved_migration_url,
        settings.resolved_database_url,
        settings.resolved_broker_url.removeprefix("sqla+"),
        settings.resolved_result_backend.removeprefix("db+"),
    )
    for url in urls:
        try:
            parsed = make_url(url)
        except ArgumentError:
            continue  # amqp://, redis://: not a database URL
        name = parsed.database
        if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
            continue
        if name.startswith("file:"):
            continue  # a URI filename: SQLite's own options, left as they are
        path = Path(name).resolve()
        if path not in files:
            files.append(path)
    return files


_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private_files(databases: list[Path]) -> None:
    """Each database file 0600, created so before SQLite makes it with the umask's mode, and
    its ``-wal``, ``-shm`` and ``-journal`` files 0600 when they exist (SQLite gives those it
    creates later the database file's mode)."""
    for database in databases:
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        for path in (database, *(database.with_name(database.name + s) for s in _SIDE_FILES)):
            if path.exists():
                path.chmod(0o600)


def init_node(settings: Settings, *, owner_role: str | None = None) -> list[Path]:
    """Create missing secrets (the data directory 0700), migrate (connected as
    PALERMO_MIGRATION_DATABASE_URL when set, as ``owner_role`` when given), and audit the
    policy set if it changed. SQLite database files are 0600. Raises CommandError (a pack or
    the reference data does not load)."""
    created = write_secret_files(settings.data_dir, settings)
    url = settings.resolved_migration_url
    databases = sqlite_files(settings)
    make_private_files(databases)
    migrate.upgrade(url, role=owner_role)
    make_private_files(databases)
    run_in_session(
        settings,
        lambda s, n: record_policy_loaded(
            s, node_id=n.node_id, policy=node_policy(settings), actor=cli_actor()
        ),
        url=url,
    )
    return created


def _connected_as(url: str) -> str:
    with psycopg.connect(dbroles.libpq_url(url), connect_timeout=10) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else "?"


def prepare_owner(settings: Settings, owner_role: str) -> str:
    """``--owner-role``: make the owner before migrating. Raises CommandError."""
    url = settings.resolved_migration_url
    if not dbroles.is_postgresql(url):
        raise CommandError("--owner-role is for PostgreSQL")
    try:
        with psycopg.connect(dbroles.libpq_url(url), autocommit=True) as conn:
            return dbroles.prepare_owner_role(conn, owner_role)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CommandError(
            f"cannot create or grant role {owner_role} as {_connected_as(url)} "
            f"({exc.diag.message_primary}): connect PALERMO_MIGRATION_DATABASE_URL as a "
            "role that may create roles, or migrate as the owner itself without --owner-role"
        ) from exc
    except dbroles.PrivilegedRoleError as exc:
        raise CommandError(str(exc)) from exc


def postgresql_roles(
    settings: Settings,
    *,
    app_role: str | None,
    password: str | None,
    owner_role: str | None = None,
) -> list[str]:
    """On PostgreSQL, what init did and found about the roles (lines to print): the owner it
    migrated as, the app login role it made (``--app-role``), and whether PALERMO_DATABASE_URL
    connects with least privilege. Raises CommandError (the app role cannot be made)."""
    owner_url = settings.resolved_migration_url
    if not dbroles.is_postgresql(owner_url):
        return []
    lines = [f"migrated as {owner_role or _connected_as(owner_url)} (the owner of the schema)"]
    if app_role is not None:
        try:
            with psycopg.connect(dbroles.libpq_url(owner_url), autocommit=True) as conn:
                lines.append(dbroles.ensure_app_login_role(conn, app_role, password))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CommandError(
                f"cannot create or alter role {app_role} as {_connected_as(owner_url)}: "
                f"ask the DBA for `CREATE ROLE {app_role} LOGIN PASSWORD '...' IN ROLE "
                f"{dbroles.APP_ROLE}` ({exc.diag.message_primary})"
            ) from exc
        except dbroles.PrivilegedRoleError as exc:
            raise CommandError(str(exc)) from exc
    app_url = settings.resolved_database_url
    if settings.migration_database_url is None:
        lines.append(
            "warning: no PALERMO_MIGRATION_DATABASE_URL: the api, worker and beat would connect "
            "as the owner, which production refuses; see docs/operations.md"
        )
    elif app_role is not None or dbroles.is_postgresql(app_url):
        try:
            with psycopg.connect(dbroles.libpq_url(app_url), connect_timeout=10) as conn:
                problems = dbroles.role_problems(conn)
            lines.append(
                "PALERMO_DATABASE_URL: least privilege (a member of palermo_app only)"
                if not problems
                else f"warning: PALERMO_DATABASE_URL: {'; '.join(problems)}"
            )
        except psycopg.OperationalError as exc:
            lines.append(f"PALERMO_DATABASE_URL: cannot connect yet ({exc})")
    return lines


def cmd_init(args: argparse.Namespace) -> int:
    settings = Settings()
    password = None
    if args.app_password_file is not None:
        password = Path(args.app_password_file).read_text().rstrip("\r\n")
        if not password:
            raise CommandError(f"{args.app_password_file} is empty")
    if args.owner_role is not None:
        print(prepare_owner(settings, args.owner_role))
    created = init_node(settings, owner_role=args.owner_role)
    for path in created:
        print(f"created {path}")
    print(f"database ready: {settings.resolved_migration_url.split('@')[-1]}")
    roles = postgresql_roles(
        settings, app_role=args.app_role, password=password, owner_role=args.owner_role
    )
    for line in roles:
        print(line)
    print(f"policy: {node_policy(settings).hash}")
    return 0


def cmd_participant_add(args: argparse.Namespace) -> int:
    p = run_in_session(
        Settings(),
        lambda s, n: participants.register_participant(
            s,
            node=n,
            participant_id=args.id,
            kind=args.kind,
            display_name=args.name,
            adapter=args.adapter,
            actor=cli_actor(),
        ),
    )
    print(f"registered {p.id} ({p.kind}, {p.jurisdiction})")
    return 0


def cmd_participant_list(args: argparse.Namespace) -> int:
    async def go(s: AsyncSession, n: NodeContext) -> list[Any]:
        return await participants.list_participants(s)

    for p in run_in_session(Settings(), go):
        print(f"{p.id:32} {p.kind:18} {p.jurisdiction}  {p.status:9} {p.display_name}")
    return 0


def _parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise CommandError(f"{value}: give a time zone (e.g. 2027-01-01T00:00:00+00:00)")
    return parsed


def cmd_key_generate(args: argparse.Namespace) -> int:
    made = run_in_session(
        Settings(),
        lambda s, n: participants.add_key(
            s,
            node=n,
            participant_id=args.participant,
            purpose=args.purpose,
            public_key=None,
            generate=True,
            not_after=_parse_time(args.not_after),
            actor=cli_actor(),
            custodial=not args.out,
        ),
    )
    if args.out:
        assert made.private_key is not None
        if args.purpose == "signing":
            KeyFile(args.participant, made.key.kid, made.private_key).save(args.out)
        else:  # the participant opens the copies sealed to it (palermo client export)
            EncryptionKeyFile(args.participant, made.key.kid, made.private_key).save(args.out)
        print(f"generated self-held {args.purpose} key {made.key.kid}, written to {args.out}")
    else:
        print(f"generated custodial {args.purpose} key {made.key.kid}")
    return 0


def cmd_key_add(args: argparse.Namespace) -> int:
    public = participants.decode_public_key(args.public_key)
    made = run_in_session(
        Settings(),
        lambda s, n: participants.add_key(
            s,
            node=n,
            participant_id=args.participant,
            purpose=args.purpose,
            public_key=public,
            generate=False,
            not_after=_parse_time(args.not_after),
            actor=cli_actor(),
        ),
    )
    print(f"registered {args.purpose} key {made.key.kid}")
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    made = run_in_session(
        Settings(),
        lambda s, n: participants.rotate_key(
            s,
            node=n,
            participant_id=args.participant,
            purpose=args.purpose,
            grace=dt.timedelta(days=args.grace_days),
            custodial=not args.out,
            actor=cli_actor(),
        ),
    )
    if args.out and made.private_key is not None:
        if args.purpose == "signing":
            KeyFile(args.participant, made.key.kid, made.private_key).save(args.out)
        else:
            EncryptionKeyFile(args.participant, made.key.kid, made.private_key).save(args.out)
    print(f"new {args.purpose} key {made.key.kid}; earlier keys valid {args.grace_days} more days")
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    key = run_in_session(
        Settings(),
        lambda s, n: participants.revoke_key(
            s,
            node=n,
            participant_id=args.participant,
            kid=args.kid,
            reason=args.reason,
            actor=cli_actor(),
        ),
    )
    print(f"revoked {key.kid} at {key.revoked_at}")
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    async def go(s: AsyncSession, n: NodeContext) -> list[Any]:
        await participants.get_participant(s, args.participant)
        return await participants.keys_of(s, args.participant)

    for k in run_in_session(Settings(), go):
        state = "revoked" if k.revoked_at else "custodial" if k.custodial else "self-held"
        pub = base64.b64encode(k.public_key).decode()
        print(f"{k.kid}  {k.purpose:10} {state:9} until {k.not_after or '-'}  {pub}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CommandError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_user_add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    account, _ = run_in_session(
        Settings(),
        lambda s, n: accounts.create_account(
            s,
            node=n,
            participant_id=args.participant,
            kind=AccountKind.PERSON,
            login=args.login,
            display_name=args.name or args.login,
            secret=password,
            roles=frozenset(args.role),
            actor=cli_actor(),
        ),
    )
    print(f"created user {account.login} of {account.participant_id} ({', '.join(account.roles)})")
    return 0


def cmd_client_add(args: argparse.Namespace) -> int:
    account, secret = run_in_session(
        Settings(),
        lambda s, n: accounts.create_account(
            s,
            node=n,
            participant_id=args.participant,
            kind=AccountKind.SYSTEM,
            login=args.client_id,
            display_name=args.name or args.client_id,
            secret=None,
            roles=frozenset({Role.SYSTEM}),
            actor=cli_actor(),
        ),
    )
    print(json.dumps({"client_id": account.login, "client_secret": secret}))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from audit.verify import main as verify_main

    return verify_main(args.rest)


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create secrets (if missing) and migrate the database")
    p.add_argument(
        "--app-role",
        help="PostgreSQL: create (or update) this LOGIN role, a member of palermo_app only, "
        "for the api, worker and beat to connect as",
    )
    p.add_argument(
        "--owner-role",
        help="PostgreSQL: create (if missing) this NOLOGIN role and migrate as it (SET ROLE), "
        "so that it, not the connecting role, owns the schema's objects",
    )
    p.add_argument(
        "--app-password-file",
        help="the app role's password, read from this file (default: no password is set)",
    )
    p.set_defaults(handler=cmd_init)

    part = sub.add_parser("participant", help="the participant registry")
    psub = part.add_subparsers(dest="action", required=True)
    p = psub.add_parser("add", help="register a participant")
    p.add_argument("id", help="<iso-3166 alpha-2>.<slug>, e.g. it.central-authority")
    p.add_argument("--kind", required=True, choices=[k.value for k in ParticipantKind])
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--adapter", default="inbox")
    p.set_defaults(handler=cmd_participant_add)
    p = psub.add_parser("list", help="list participants")
    p.set_defaults(handler=cmd_participant_list)

    key = sub.add_parser("key", help="participant keys")
    ksub = key.add_subparsers(dest="action", required=True)
    p = ksub.add_parser("generate", help="generate a key (custodial unless --out)")
    p.add_argument("participant")
    p.add_argument("--purpose", choices=["signing", "encryption"], default="signing")
    p.add_argument("--out", help="write a self-held signing key file instead of keeping it")
    p.add_argument("--not-after", help="end of validity, ISO 8601 with time zone")
    p.set_defaults(handler=cmd_key_generate)
    p = ksub.add_parser("add", help="register a public key the participant holds")
    p.add_argument("participant")
    p.add_argument("--purpose", choices=["signing", "encryption"], default="signing")
    p.add_argument("--public-key", required=True, help="base64 of the 32-byte public key")
    p.add_argument("--not-after")
    p.set_defaults(handler=cmd_key_add)
    p = ksub.add_parser("rotate", help="new key; earlier keys of that purpose end after a grace")
    p.add_argument("participant")
    p.add_argument("--purpose", choices=["signing", "encryption"], default="signing")
    p.add_argument("--grace-days", type=int, default=30)
    p.add_argument("--out", help="self-held: write the new signing key file here")
    p.set_defaults(handler=cmd_key_rotate)
    p = ksub.add_parser("revoke", help="revoke a key at once")
    p.add_argument("participant")
    p.add_argument("kid")
    p.add_argument("--reason", required=True)
    p.set_defaults(handler=cmd_key_revoke)
    p = ksub.add_parser("list", help="list a participant's keys")
    p.add_argument("participant")
    p.set_defaults(handler=cmd_key_list)

    user = sub.add_parser("user", help="people")
    usub = user.add_subparsers(dest="action", required=True)
    p = usub.add_parser("add", help="add a person; the password is read from standard input")
    p.add_argument("participant")
    p.add_argument("login")
    p.add_argument(
        "--role",
        action="append",
        required=True,
        choices=sorted(PERSON_ROLES),
    )
    p.add_argument("--name")
    p.set_defaults(handler=cmd_user_add)

    client = sub.add_parser("client", help="agency systems (client_credentials)")
    csub = client.add_subparsers(dest="action", required=True)
    p = csub.add_parser("add", help="add a system; prints its client secret once")
    p.add_argument("participant")
    p.add_argument("client_id")
    p.add_argument("--name")
    p.set_defaults(handler=cmd_client_add)

    aud = sub.add_parser("audit", help="the audit log")
    asub = aud.add_subparsers(dest="action", required=True)
    p = asub.add_parser("verify", help="verify an export bundle offline (as palermo-verify)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_audit_verify)
