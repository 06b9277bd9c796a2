from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from broker.accounts import service
from broker.accounts.models import Account, AccountKind
from broker.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountList,
    AccountRead,
    AccountRoles,
    PasswordChange,
    SecretReset,
    TokenRead,
    WhoAmI,
)
from broker.accounts.throttling import ThrottleLimits, TooManyLogins, authenticate_throttled
from broker.core.context import Caller
from broker.core.db import utcnow
from broker.core.errors import Forbidden, InvalidGrant, NotFound, SchemaViolation
from broker.core.tokens import issue_token
from broker.http import Admin, CallerDep, NodeDep, SessionDep, SettingsDep, client_address

router = APIRouter(tags=["auth"])


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        login, sep, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidGrant("malformed Basic credentials", error="invalid_client") from exc
    return (login, secret) if sep else None


@router.post("/v1/auth/token", response_model=TokenRead)
async def token(
    request: Request,
    response: Response,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> TokenRead:
    """OAuth 2.0 token endpoint (RFC 6749): ``password`` grant for people, ``client_credentials``
    for agency systems (form fields or HTTP Basic). Failed logins are throttled per login and
    per client address (429 ``too-many-logins`` with Retry-After) and audited."""
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 section 5.1
    response.headers["Pragma"] = "no-cache"
    if grant_type == "password":
        if not username or not password:
            raise SchemaViolation(
                "the password grant needs username and password", field="username"
            )
        kind, login, secret = AccountKind.PERSON, username, password
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise SchemaViolation(
                "client_credentials needs client_id and client_secret", field="client_id"
            )
        kind, login, secret = AccountKind.SYSTEM, client_id, client_secret
    else:
        raise SchemaViolation(
            f"unsupported grant_type {grant_type!r}: use password or client_credentials",
            field="grant_type",
            error="unsupported_grant_type",
        )
    try:
        account = await authenticate_throttled(
            session,
            node=node,
            kind=kind,
            login=login,
            secret=secret,
            address=client_address(request, settings),
            channel="api",
            limits=ThrottleLimits.from_settings(settings),
            now=utcnow(),
        )
    except (InvalidGrant, TooManyLogins):
        await session.commit()  # the failure is counted and audited even though refused
        raise
    await session.commit()
    access, _expires_at = issue_token(
        secret=settings.token_secret_bytes,
        issuer=settings.resolved_issuer,
        audience=settings.token_audience,
        subject=account.id,
        participant_id=account.participant_id,
        roles=frozenset(account.roles),
        kind=account.kind,
        ttl_seconds=settings.token_ttl_seconds,
    )
    return TokenRead(
        access_token=access,
        expires_in=settings.token_ttl_seconds,
        participant_id=account.participant_id,
        roles=list(account.roles),
    )


async def _person(caller: CallerDep) -> Caller:
    if caller.kind != AccountKind.PERSON:
        raise Forbidden("only a person has a password; a system's secret is generated")
    return caller


Person = Annotated[Caller, Depends(_person)]


@router.put(
    "/v1/accounts/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["accounts"],
)
async def change_my_password(
    request: Request,
    body: PasswordChange,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    caller: Person,
) -> Response:
    """A person changes their own password, giving the current one (a wrong one counts as a
    failed login: 401, then 429 too-many-logins). Every token and web session issued before,
    this request's token included, is refused from then on. Audited as
    ``account:password-changed``. A system is refused (403): its secret is generated."""
    service.check_password_rules(body.new_password, field="new_password")
    login = (await service.get_account(session, caller.account_id)).login
    now = utcnow()
    try:
        account = await authenticate_throttled(
            session,
            node=node,
            kind=AccountKind.PERSON,
            login=login,
            secret=body.current_password,
            address=client_address(request, settings),
            channel="api",
            limits=ThrottleLimits.from_settings(settings),
            now=now,
        )
    except (InvalidGrant, TooManyLogins):
        await session.commit()
        raise
    await service.change_password(
        session, node=node, account=account, new_password=body.new_password, now=now
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/auth/whoami", response_model=WhoAmI)
async def whoami(caller: CallerDep) -> WhoAmI:
    return WhoAmI(
        account_id=caller.account_id,
        participant_id=caller.participant_id,
        roles=sorted(caller.roles),
        kind=caller.kind,
    )


def account_read(a: Account) -> AccountRead:
    return AccountRead(
        id=a.id,
        participant_id=a.participant_id,
        kind=a.kind,
        login=a.login,
        display_name=a.display_name,
        roles=list(a.roles),
        active=a.active,
        created_at=a.created_at,
    )


@router.get(
    "/v1/participants/{participant_id}/accounts", response_model=AccountList, tags=["accounts"]
)
async def list_accounts(
    participant_id: str, session: SessionDep, settings: SettingsDep, caller: Admin
) -> AccountList:
    service.check_may_manage(caller, participant_id, hub_operator=settings.hub_operator)
    return AccountList(
        items=[account_read(a) for a in await service.list_accounts(session, participant_id)]
    )


@router.post(
    "/v1/participants/{participant_id}/accounts",
    response_model=AccountCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["accounts"],
)
async def create_account(
    participant_id: str,
    body: AccountCreate,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    caller: Admin,
) -> AccountCreated:
    service.check_may_manage(caller, participant_id, hub_operator=settings.hub_operator)
    if body.kind is AccountKind.PERSON and not body.password:
        raise SchemaViolation("a person needs a password", field="password")
    account, secret = await service.create_account(
        session,
        node=node,
        participant_id=participant_id,
        kind=body.kind,
        login=body.login,
        display_name=body.display_name,
        secret=body.password if body.kind is AccountKind.PERSON else None,
        roles=frozenset(r.value for r in body.roles),
        actor=caller.actor(),
    )
    await session.commit()
    return AccountCreated(
        **account_read(account).model_dump(),
        client_secret=secret if body.kind is AccountKind.SYSTEM else None,
    )


async def _managed(
    session: SessionDep, account_id: str, caller: Caller, *, hub_operator: bool
) -> None:
    """The account exists and the caller may manage it; an account of a participant the
    caller may not manage is a 404, as if it did not exist (its id reveals nothing)."""
    account = await service.get_account(session, account_id)
    try:
        service.check_may_manage(caller, account.participant_id, hub_operator=hub_operator)
    except Forbidden as exc:
        raise NotFound(f"no account {account_id}") from exc


@router.post(
    "/v1/accounts/{account_id}/disable",
    response_model=AccountRead,
    tags=["accounts"],
)
async def disable_account(
    account_id: str, session: SessionDep, node: NodeDep, settings: SettingsDep, caller: Admin
) -> AccountRead:
    """Disable an account: its tokens and sessions stop working at once. The last active
    admin of a participant cannot be disabled (409)."""
    await _managed(session, account_id, caller, hub_operator=settings.hub_operator)
    account = await service.set_account_active(
        session, node=node, account_id=account_id, active=False, actor=caller.actor()
    )
    await session.commit()
    return account_read(account)


@router.put(
    "/v1/accounts/{account_id}/roles",
    response_model=AccountRead,
    tags=["accounts"],
)
async def set_account_roles(
    account_id: str,
    body: AccountRoles,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    caller: Admin,
) -> AccountRead:
    """Replace an account's roles. Admin stands alone (422); the last active admin of a
    participant keeps the role (409)."""
    await _managed(session, account_id, caller, hub_operator=settings.hub_operator)
    account = await service.set_roles(
        session,
        node=node,
        account_id=account_id,
        roles=frozenset(r.value for r in body.roles),
        actor=caller.actor(),
    )
    await session.commit()
    return account_read(account)


@router.post(
    "/v1/accounts/{account_id}/secret-reset",
    response_model=SecretReset,
    tags=["accounts"],
)
async def reset_account_secret(
    account_id: str,
    response: Response,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    caller: Admin,
) -> SecretReset:
    """Give an account a new random password (a person: temporary, the only call it opens is
    ``PUT /v1/accounts/me/password``, until it is changed) or
    client secret (a system), shown in this answer only and stored as a hash. Every token
    and session issued before stops working. Audited as ``account:secret-reset``."""
    response.headers["Cache-Control"] = "no-store"
    await _managed(session, account_id, caller, hub_operator=settings.hub_operator)
    account, secret = await service.reset_secret(
        session, node=node, account_id=account_id, actor=caller.actor(), now=utcnow()
    )
    await session.commit()
    return SecretReset(**account_read(account).model_dump(), secret=secret)
