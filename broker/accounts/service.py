"""People and agency systems, and how they prove who they are.

A person signs in with a password (argon2id hash); a system with a client id and secret
(argon2id hash too). Both belong to exactly one participant and carry roles. Unknown logins
and wrong secrets take the same time and give the same answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import JSON, Boolean, String, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts.models import Account, AccountKind
from broker.core import crypto
from broker.core.context import Actor, Caller, NodeContext
from broker.core.db import HotStatement, UTCDateTime, utcnow
from broker.core.errors import Conflict, Forbidden, InvalidGrant, NotFound, SchemaViolation
from broker.core.ids import uuid7
from broker.core.roles import PERSON_ROLES, SYSTEM_ROLES, Role
from broker.oversight.service import AuditKind, record_event
from broker.participants.service import get_participant

MIN_PASSWORD_LENGTH = 12


def login_digest(node: NodeContext, login: str) -> str:
    """The keyed digest that names a login in audit leaves (docs/audit.md: no identifier of a
    person in clear)."""
    return crypto.keyed_digest(node.master_key, f"account:login:{login}".encode())


def address_digest(node: NodeContext, address: str) -> str:
    """The keyed digest that names a client address in audit leaves and throttle rows: the
    failures from one address correlate, the address itself is not kept (docs/audit.md)."""
    return crypto.keyed_digest(node.master_key, f"auth:address:{address}".encode())


def check_may_manage(caller: Caller, participant_id: str, *, hub_operator: bool) -> None:
    """An admin manages the accounts of its own participant; on a hub operator's node, of
    every participant. Raises Forbidden otherwise."""
    if not hub_operator and caller.participant_id != participant_id:
        raise Forbidden(
            f"an admin of {caller.participant_id} manages only its own participant's accounts"
            " (this node is not a hub operator)"
        )


def check_roles(kind: AccountKind, roles: frozenset[str]) -> None:
    """The roles a person or a system may hold. Admin stands alone: an account that manages
    accounts must not also read the audit log as oversight or handle cases, or one account
    could grant itself another participant's inbox. Raises SchemaViolation."""
    allowed = PERSON_ROLES if kind is AccountKind.PERSON else SYSTEM_ROLES
    if not roles or not roles <= allowed:
        raise SchemaViolation(
            f"roles for a {kind} must be a non-empty subset of {sorted(allowed)}", field="roles"
        )
    if Role.ADMIN in roles and len(roles) > 1:
        raise SchemaViolation(
            "admin cannot be combined with other roles: give the person a second account",
            field="roles",
        )


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
    check_roles(kind, roles)
    # A person's password the node makes is temporary: they choose their own before
    # anything else (a password an administrator chose is theirs to pass on as is).
    temporary = secret is None and kind is AccountKind.PERSON
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
        secret_hash=await crypto.hash_password_off_loop(secret),
        roles=sorted(roles),
        active=True,
        created_at=utcnow(),
        password_change_required=temporary,
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
        participant=participant_id,
        login_digest=login_digest(node, login),
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
    account = await get_account(session, account_id)
    if account.active != active:
        if not active:
            await _keep_an_admin(session, account, roles=frozenset())
            account.tokens_valid_after = utcnow()  # enabled again, it starts with none
        account.active = active
        await session.flush()
        await record_event(
            session,
            kind=AuditKind.ACCOUNT_UPDATED,
            node=node.node_id,
            actor=actor,
            participant_id=account.participant_id,
            account=account.id,
            participant=account.participant_id,
            login_digest=login_digest(node, account.login),
            active=active,
        )
    return account


async def get_account(session: AsyncSession, account_id: str) -> Account:
    """Raises NotFound."""
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}")
    return account


async def _keep_an_admin(session: AsyncSession, account: Account, *, roles: frozenset[str]) -> None:
    """Refuse to leave a participant without an active admin (nobody could then manage its
    accounts but the node's operator at the console): ``account`` is about to hold ``roles``
    (empty when it is disabled). Raises Conflict."""
    if Role.ADMIN not in account.roles or Role.ADMIN in roles or not account.active:
        return
    others = (
        await session.scalars(
            select(Account).where(
                Account.participant_id == account.participant_id,
                Account.active.is_(True),
                Account.id != account.id,
            )
        )
    ).all()
    if not any(Role.ADMIN in a.roles for a in others):
        raise Conflict(
            f"{account.login} is the last active admin of {account.participant_id}:"
            " make another admin first"
        )


async def set_roles(
    session: AsyncSession,
    *,
    node: NodeContext,
    account_id: str,
    roles: frozenset[str],
    actor: Actor | None,
) -> Account:
    """Replace an account's roles, under the rules of ``check_roles``; the last admin keeps
    its role. Audited as ``account:updated`` with the roles before and after. Raises NotFound,
    SchemaViolation, Conflict."""
    account = await get_account(session, account_id)
    check_roles(AccountKind(account.kind), roles)
    before = sorted(account.roles)
    if before != sorted(roles):
        await _keep_an_admin(session, account, roles=roles)
        account.roles = sorted(roles)
        await session.flush()
        await record_event(
            session,
            kind=AuditKind.ACCOUNT_UPDATED,
            node=node.node_id,
            actor=actor,
            participant_id=account.participant_id,
            account=account.id,
            participant=account.participant_id,
            login_digest=login_digest(node, account.login),
            roles_before=before,
            roles=sorted(roles),
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

    The argon2 check runs in a worker thread, a bounded number at a time
    (``crypto.check_password_off_loop``), and with no transaction open: the session's
    transaction is ended before it (so call this before writing anything), since on SQLite
    every transaction holds the write lock and on PostgreSQL a pooled connection, for the
    whole time a login waits for its hash."""
    row = (
        await session.execute(
            select(Account.id, Account.kind, Account.secret_hash).where(Account.login == login)
        )
    ).first()
    await session.rollback()
    stored = row.secret_hash if row is not None and row.kind == kind else None
    matches = await crypto.check_password_off_loop(stored, secret)
    account = await session.get(Account, row.id) if matches and row is not None else None
    if account is None or not account.active:
        raise InvalidGrant("unknown login or wrong secret", error="invalid_grant")
    return account


def check_password_rules(password: str, *, field: str = "password") -> None:
    """Raises SchemaViolation."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SchemaViolation(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", field=field
        )


async def change_password(
    session: AsyncSession,
    *,
    node: NodeContext,
    account: Account,
    new_password: str,
    now: dt.datetime,
) -> None:
    """Set a person's new password (the caller has checked the current one) and revoke every
    token and web session issued before. Audited as ``account:password-changed``. Raises
    SchemaViolation."""
    check_password_rules(new_password, field="new_password")
    if account.kind != AccountKind.PERSON:
        raise SchemaViolation("only a person has a password", field="new_password")
    account.secret_hash = await crypto.hash_password_off_loop(new_password)
    account.tokens_valid_after = now
    account.password_change_required = False
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.ACCOUNT_PASSWORD_CHANGED,
        node=node.node_id,
        actor=Actor(account.participant_id, account.id),
        participant_id=account.participant_id,
        account=account.id,
        participant=account.participant_id,
        login_digest=login_digest(node, account.login),
    )


async def reset_secret(
    session: AsyncSession,
    *,
    node: NodeContext,
    account_id: str,
    actor: Actor | None,
    now: dt.datetime,
) -> tuple[Account, str]:
    """An administrator's reset: a new random password (a person) or client secret (a
    system), returned once and stored only as its argon2id hash; every token and web session
    issued before is refused from then on. Audited as ``account:secret-reset``. A person's
    new password is temporary (``password_change_required``): they must choose their own
    before doing anything else. Raises NotFound."""
    account = await get_account(session, account_id)
    secret = secrets.token_urlsafe(18 if account.kind == AccountKind.PERSON else 32)
    account.secret_hash = await crypto.hash_password_off_loop(secret)
    account.tokens_valid_after = now
    account.password_change_required = account.kind == AccountKind.PERSON
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.ACCOUNT_SECRET_RESET,
        node=node.node_id,
        actor=actor,
        participant_id=account.participant_id,
        account=account.id,
        participant=account.participant_id,
        login_digest=login_digest(node, account.login),
        account_kind=account.kind,
    )
    return account, secret


@dataclass(frozen=True, slots=True)
class ActiveAccount:
    """What authentication needs of an account, read on every authenticated request."""

    id: str
    participant_id: str
    kind: str
    roles: frozenset[str]
    tokens_valid_after: dt.datetime | None = None
    password_change_required: bool = False

    def accepts(self, issued_at: float) -> bool:
        """Whether a token or session issued at ``issued_at`` (unix seconds) still holds."""
        return self.tokens_valid_after is None or issued_at >= self.tokens_valid_after.timestamp()


_ACTIVE_ACCOUNT = HotStatement(
    "SELECT participant_id, kind, roles, tokens_valid_after, password_change_required"
    " FROM accounts WHERE id = :id AND active",
    columns={
        "participant_id": String(),
        "kind": String(),
        "roles": JSON(),
        "tokens_valid_after": UTCDateTime(),
        "password_change_required": Boolean(),
    },
)


async def caller_for(session: AsyncSession, account_id: str, *, issued_at_ms: int) -> Caller | None:
    """The active account as a Caller (the ``CallerLookup`` the HTTP layer is made with);
    None when the token was issued before the account's tokens were revoked."""
    account = await active_account(session, account_id)
    if account is None or not account.accepts(issued_at_ms / 1000):
        return None
    return Caller(
        account_id=account.id,
        participant_id=account.participant_id,
        roles=account.roles,
        kind=account.kind,
        password_change_required=account.password_change_required,
    )


async def active_account(session: AsyncSession, account_id: str) -> ActiveAccount | None:
    """The account if it exists and is active. Read from the database on every request, so
    disabling an account takes effect at once; one prepared statement on PostgreSQL."""
    rows = await _ACTIVE_ACCOUNT.rows(session, {"id": account_id})
    if not rows:
        return None
    participant_id, kind, roles, valid_after, change_required = rows[0]
    return ActiveAccount(
        account_id, participant_id, kind, frozenset(roles), valid_after, bool(change_required)
    )


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "ActiveAccount",
    "active_account",
    "address_digest",
    "authenticate",
    "caller_for",
    "change_password",
    "check_may_manage",
    "check_password_rules",
    "check_roles",
    "create_account",
    "get_account",
    "list_accounts",
    "login_digest",
    "reset_secret",
    "set_account_active",
    "set_roles",
]
