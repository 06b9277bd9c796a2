"""FastAPI dependencies every router shares: the node, a session, the authenticated caller.

Authentication fails closed: no token, a bad token, an inactive account, or a role outside
the endpoint's list is refused before the endpoint runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import clientaddr
from broker.core.context import Caller, CallerLookup, NodeContext
from broker.core.db import Database
from broker.core.errors import Forbidden, PasswordChangeRequired, Unauthenticated
from broker.core.logging import bind_contextvars
from broker.core.roles import HANDLERS, SUPERVISORS, Role
from broker.core.settings import Settings
from broker.core.text import lone_surrogate_in
from broker.core.tokens import TokenClaims, TokenError, decode_token


async def checked_json_text(request: Request) -> None:
    """Refuse a JSON request body that holds a lone surrogate anywhere (``"\\ud800"`` is
    valid JSON, but no UTF-8 text: the database, the password hash and the response would
    each fail on it), with a 422 naming the field. Runs for every route (an application
    dependency), before the endpoint, on the JSON FastAPI already parsed; endpoints that read
    their body themselves parse it with orjson, which refuses lone surrogates.

    Raises RequestValidationError."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return
    content_type = request.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower().endswith("json"):
        return
    found = lone_surrogate_in(await request.json())  # cached: parsed once, by FastAPI
    if found is not None:
        path, why = found
        raise RequestValidationError(
            [{"type": "string_unicode", "loc": ("body", *path), "msg": why, "input": None}]
        )


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_address(request: Request, settings: Settings) -> str:
    """The address login throttling and its audit count this request under: the peer's,
    or, from a trusted proxy (PALERMO_TRUSTED_PROXIES), the right-most untrusted hop of
    X-Forwarded-For (broker.core.clientaddr). Never raises on a malformed header."""
    return clientaddr.client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        settings.trusted_proxy_networks,
    )


async def get_node(request: Request) -> NodeContext:
    node: NodeContext = request.app.state.node
    return node


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request. The endpoint commits; whatever it did not commit rolls back
    when the session closes."""
    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
NodeDep = Annotated[NodeContext, Depends(get_node)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def bearer_claims(authorization: str, settings: Settings) -> TokenClaims:
    """The verified claims of an ``Authorization: Bearer`` header; raises Unauthenticated.
    It needs no database: the request limits run it before a body is read."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an access token: Authorization: Bearer <token>")
    try:
        return decode_token(
            token.strip(),
            secret=settings.token_secret_bytes,
            issuer=settings.resolved_issuer,
            audience=settings.token_audience,
        )
    except TokenError as exc:
        raise Unauthenticated(f"access token refused: {exc}") from exc


# The one call open to a person on a temporary password (broker/accounts/views.py).
PASSWORD_CHANGE_PATH = "/v1/accounts/me/password"  # noqa: S105 - a route, not a secret


async def get_caller(request: Request, session: SessionDep, settings: SettingsDep) -> Caller:
    claims = bearer_claims(request.headers.get("authorization", ""), settings)
    lookup: CallerLookup | None = getattr(request.app.state, "callers", None)
    if lookup is None:  # an application made without its accounts: nobody gets in
        raise Unauthenticated("this node cannot resolve accounts")
    caller = await lookup(session, claims.subject, issued_at_ms=claims.issued_at_ms)
    if caller is None or caller.participant_id != claims.participant_id:
        raise Unauthenticated(
            "the account behind this token is not active, or its tokens were revoked"
        )
    bind_contextvars(participant=caller.participant_id, account=caller.account_id)
    if caller.password_change_required and request.url.path != PASSWORD_CHANGE_PATH:
        raise PasswordChangeRequired(
            "this account holds a temporary password the node made: choose your own with "
            f"PUT {PASSWORD_CHANGE_PATH} first"
        )
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_roles(*roles: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets through only callers holding one of ``roles``."""
    allowed = frozenset(roles)

    async def dependency(caller: CallerDep) -> Caller:
        if caller.roles.isdisjoint(allowed):
            raise Forbidden(f"this needs one of the roles {sorted(allowed)}")
        return caller

    return dependency


Admin = Annotated[Caller, Depends(require_roles(Role.ADMIN))]
Handler = Annotated[Caller, Depends(require_roles(*HANDLERS))]
Oversight = Annotated[Caller, Depends(require_roles(Role.OVERSIGHT))]
Supervisor = Annotated[Caller, Depends(require_roles(*SUPERVISORS))]
