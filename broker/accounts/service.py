"""People and agency systems, and how they prove who they are.

A person signs in with a password (argon2id hash); a system with a client id and secret
(argon2id hash too). Both belong to exactly one participant and carry roles. Unknown logins
and wrong secrets take the same time and give the same answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import anyio
from sqlalchemy import JSON, String, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts.models import Account, AccountKind
from broker.core import crypto
from broker.core.context import Actor, Caller, NodeContext
from broker.core.db import HotStatement, utcnow
from broker.core.errors import Conflict, InvalidGrant, NotFound, SchemaViolation
from broker.core.ids import uuid7
from broker.core.roles import PERSON_ROLES, SYSTEM_ROLES
from broker.oversight.service import AuditKind, record_event
from broker.participants.service import get_participant

MIN_PASSWORD_LENGTH = 12


async def create_account(
    session: AsyncSession,
    *,
    node: NodeContext,
    participant_id: str,
    kind: AccountKind,
    login: str,
    display_name: str,
    secret: str | None,
    roles: frozenset[str],
    actor: Actor | None,
) -> tuple[Account, str]:
    """Create a person (``secret`` is the password) or a system (a secret is generated when
    ``secret`` is None). Returns the account and its secret. Raises NotFound, Conflict,
    SchemaViolation."""
    await get_participant(session, participant_id)
    allowed = PERSON_ROLES if kind is AccountKind.PERSON else SYSTEM_ROLES
    if not roles or not roles <= allowed:
        raise SchemaViolation(
            f"roles for a {kind} must be a non-empty subset of {sorted(allowed)}", field="roles"
        )
    if secret is None:
        secret = secrets.token_urlsafe(32)
    if len(secret) < MIN_PASSWORD_LENGTH:
        raise SchemaViolation(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if await session.scalar(select(Account.id).where(Account.login == login)) is not None:
        raise Conflict(f"login {login!r} is taken")
    account = Account(
        id=str(uuid7()),
        participant_id=participant_id,
        kind=kind.value,
        login=login,
        display_name=display_name,
        secret_hash=crypto.hash_password(secret),
        roles=sorted(roles),
        active=True,
        created_at=utcnow(),
    )
    session.add(account)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.ACCOUNT_CREATED,
        node=node.node_id,
        actor=actor,
        participant_id=participant_id,
        account=account.id,
        account_kind=kind.value,
        roles=sorted(roles),
    )
    return account, secret


async def set_account_active(
    session: AsyncSession,
    *,
    node: NodeContext,
    account_id: str,
    active: bool,
    actor: Actor | None,
) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}")
    if account.active != active:
        account.active = active
        await session.flush()
        await record_event(
            session,
            kind=AuditKind.ACCOUNT_UPDATED,
            node=node.node_id,
            actor=actor,
            participant_id=account.participant_id,
            account=account.id,
            active=active,
        )
    return account


async def list_accounts(session: AsyncSession, participant_id: str | None = None) -> list[Account]:
    stmt = select(Account).order_by(Account.participant_id, Account.login)
    if participant_id is not None:
        stmt = stmt.where(Account.participant_id == participant_id)
    return list((await session.scalars(stmt)).all())


async def authenticate(
    session: AsyncSession, *, kind: AccountKind, login: str, secret: str
) -> Account:
    """The active account with this login and secret. Raises InvalidGrant otherwise.

    The argon2 check runs in a worker thread: it takes tens of milliseconds of CPU, which
    would otherwise stall every other request of the process."""
    account = await session.scalar(select(Account).where(Account.login == login))
    stored = account.secret_hash if account is not None and account.kind == kind else None
    matches = await anyio.to_thread.run_sync(crypto.check_password, stored, secret)
    if not matches or account is None or not account.active:
        raise InvalidGrant("unknown login or wrong secret", error="invalid_grant")
    return account


@dataclass(frozen=True, slots=True)
class ActiveAccount:
    """What authentication needs of an account, read on every authenticated request."""

    id: str
    participant_id: str
    kind: str
    roles: frozenset[str]


_ACTIVE_ACCOUNT = HotStatement(
    "SELECT participant_id, kind, roles FROM accounts WHERE id = :id AND active",
    columns={"participant_id": String(), "kind": String(), "roles": JSON()},
)


async def caller_for(session: AsyncSession, account_id: str) -> Caller | None:
    """The active account as a Caller (the ``CallerLookup`` the HTTP layer is made with)."""
    account = await active_account(session, account_id)
    if account is None:
        return None
    return Caller(
        account_id=account.id,
        participant_id=account.participant_id,
        roles=account.roles,
        kind=account.kind,
    )


async def active_account(session: AsyncSession, account_id: str) -> ActiveAccount | None:
    """The account if it exists and is active. Read from the database on every request, so
    disabling an account takes effect at once; one prepared statement on PostgreSQL."""
    rows = await _ACTIVE_ACCOUNT.rows(session, {"id": account_id})
    if not rows:
        return None
    participant_id, kind, roles = rows[0]
    return ActiveAccount(account_id, participant_id, kind, frozenset(roles))


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "ActiveAccount",
    "active_account",
    "authenticate",
    "caller_for",
    "create_account",
    "list_accounts",
    "set_account_active",
]
