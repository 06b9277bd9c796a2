"""The operator's account pages (role ``admin``): the people and systems of a participant,
their roles, disabling one, and resetting a password or a client secret.

Each action calls ``broker.accounts.service`` as its ``/v1`` endpoint does, with the same
checks first (``AccountCreate``, the hub-operator rule of ``check_may_manage``: another
participant's page is 403, another participant's account 404), in one transaction committed
before the page is sent. A secret (a system's client secret, a person's temporary password,
a reset one) is in the one response that made it and nowhere else: no redirect, no page that
shows it again; only its argon2id hash is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from broker.accounts import service as accounts
from broker.accounts.schemas import AccountCreate
from broker.core.db import utcnow
from broker.core.errors import Conflict, Forbidden, NotFound, SchemaViolation
from broker.core.roles import PERSON_ROLES, SYSTEM_ROLES
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.participants import service as participants
from broker.web.admin_views import Operating, Short, problem, service_problem
from broker.web.forward_views import errors_of
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import CsrfField, check_csrf, router

# --- accounts ------------------------------------------------------------------------------

ACCOUNT_FIELDS = {
    "kind": "a-kind",
    "login": "a-login",
    "display_name": "a-display_name",
    "roles": "a-roles",
    "password": "a-login",
}


@router.get("/admin/accounts")
async def accounts_page(
    request: Request, session: SessionDep, settings: SettingsDep, user: Operating
) -> Response:
    """Every participant whose accounts this admin manages, with how many each has."""
    rows = await accounts.list_accounts(session)
    managed = [
        p
        for p in await participants.list_participants(session)
        if settings.hub_operator or p.id == user.caller.participant_id
    ]
    await session.commit()
    counts = {p.id: sum(1 for a in rows if a.participant_id == p.id) for p in managed}
    return render(
        request, "admin_accounts.html", {"participants": managed, "counts": counts}, user=user
    )


async def _accounts_context(
    session: SessionDep, participant_id: str, **extra: Any
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "participant": await participants.get_participant(session, participant_id),
        "accounts": await accounts.list_accounts(session, participant_id),
        "person_roles": sorted(PERSON_ROLES),
        "system_roles": sorted(SYSTEM_ROLES),
        "values": {"kind": "person", "login": "", "display_name": "", "roles": []},
        "errors": [],
        "done": "",
    }
    context.update(extra)
    return context


@router.get("/admin/participants/{participant_id}/accounts")
async def participant_accounts_page(
    participant_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Operating,
) -> Response:
    accounts.check_may_manage(user.caller, participant_id, hub_operator=settings.hub_operator)
    done = next((k for k in ("disabled", "roles") if k in request.query_params), "")
    context = await _accounts_context(session, participant_id, done=done)
    await session.commit()
    return render(request, "admin_participant_accounts.html", context, user=user)


@router.post("/admin/participants/{participant_id}/accounts")
async def create_account(
    participant_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Operating,
    csrf_token: CsrfField = "",
    kind: Annotated[str, Form(max_length=16)] = "",
    login: Annotated[str, Form(max_length=120)] = "",
    display_name: Short = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """``POST /v1/participants/{id}/accounts``. The node makes the secret (for a person, a
    temporary password to change at once): it is shown on the answer, once."""
    check_csrf(request, user, csrf_token)
    accounts.check_may_manage(user.caller, participant_id, hub_operator=settings.hub_operator)
    values: dict[str, Any] = {
        "kind": kind,
        "login": login.strip(),
        "display_name": display_name.strip(),
        "roles": list(roles or []),
    }
    errors: list[dict[str, str]] = []
    body = None
    try:
        body = AccountCreate.model_validate(values)
    except ValidationError as exc:
        errors = errors_of(exc, ACCOUNT_FIELDS)
    status = 422
    account = secret = None
    if body is not None:
        try:
            account, secret = await accounts.create_account(
                session,
                node=node,
                participant_id=participant_id,
                kind=body.kind,
                login=body.login,
                display_name=body.display_name,
                secret=None,
                roles=frozenset(r.value for r in body.roles),
                actor=user.caller.actor(),
            )
        except (SchemaViolation, Conflict) as exc:
            await session.rollback()
            errors = [service_problem(exc, ACCOUNT_FIELDS, "a-login")]
            status = exc.status
    if errors or account is None:
        context = await _accounts_context(session, participant_id, values=values, errors=errors)
        await session.commit()
        return render(request, "admin_participant_accounts.html", context, user=user, status=status)
    await session.commit()
    return render(
        request,
        "admin_secret.html",
        {"account": account, "secret": secret, "created": True},
        user=user,
        status=201,
    )


async def _managed_account(
    session: SessionDep, account_id: str, user: WebUser, *, hub_operator: bool
) -> Any:
    """As the API: an account of a participant this admin may not manage is a 404."""
    account = await accounts.get_account(session, account_id)
    try:
        accounts.check_may_manage(user.caller, account.participant_id, hub_operator=hub_operator)
    except Forbidden as exc:
        raise NotFound(f"no account {account_id}") from exc
    return account


def _confirmation(request: Request, user: WebUser, account: Any, action: str) -> Response:
    """The check page before an account is disabled or its secret replaced: what it does to
    the account, a button that posts again with ``confirm=yes``, and a way back. Nothing is
    changed until that second post."""
    return render(
        request,
        "admin_account_confirm.html",
        {"account": account, "action": action},
        user=user,
    )


@router.post("/admin/accounts/{account_id}/disable")
async def disable_account(
    account_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Operating,
    csrf_token: CsrfField = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """``POST /v1/accounts/{id}/disable``; the last active admin of a participant stays. The
    first post (without ``confirm``) shows what disabling does and asks again."""
    check_csrf(request, user, csrf_token)
    account = await _managed_account(session, account_id, user, hub_operator=settings.hub_operator)
    pid = account.participant_id
    if confirm != "yes":
        return _confirmation(request, user, account, "disable")
    try:
        await accounts.set_account_active(
            session, node=node, account_id=account_id, active=False, actor=user.caller.actor()
        )
    except Conflict as exc:
        await session.rollback()
        context = await _accounts_context(
            session, pid, errors=[problem(f"disable-{account_id}", "last-admin", exc.detail)]
        )
        await session.commit()
        return render(request, "admin_participant_accounts.html", context, user=user, status=409)
    await session.commit()
    return RedirectResponse(f"/admin/participants/{pid}/accounts?disabled=1", status_code=303)


@router.post("/admin/accounts/{account_id}/roles")
async def set_account_roles(
    account_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Operating,
    csrf_token: CsrfField = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """``PUT /v1/accounts/{id}/roles``."""
    check_csrf(request, user, csrf_token)
    account = await _managed_account(session, account_id, user, hub_operator=settings.hub_operator)
    pid = account.participant_id
    field = f"roles-{account_id}"
    try:
        await accounts.set_roles(
            session,
            node=node,
            account_id=account_id,
            roles=frozenset(roles or []),
            actor=user.caller.actor(),
        )
    except (SchemaViolation, Conflict) as exc:
        await session.rollback()
        context = await _accounts_context(
            session,
            pid,
            errors=[problem(field, "roles" if exc.status == 422 else "last-admin", exc.detail)],
        )
        await session.commit()
        return render(
            request, "admin_participant_accounts.html", context, user=user, status=exc.status
        )
    await session.commit()
    return RedirectResponse(f"/admin/participants/{pid}/accounts?roles=1", status_code=303)


@router.post("/admin/accounts/{account_id}/secret-reset")
async def reset_account_secret(
    account_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Operating,
    csrf_token: CsrfField = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """``POST /v1/accounts/{id}/secret-reset``: the new secret is on this answer only. The
    first post (without ``confirm``) says the old secret stops working and asks again."""
    check_csrf(request, user, csrf_token)
    managed = await _managed_account(session, account_id, user, hub_operator=settings.hub_operator)
    if confirm != "yes":
        return _confirmation(request, user, managed, "secret-reset")
    account, secret = await accounts.reset_secret(
        session, node=node, account_id=account_id, actor=user.caller.actor(), now=utcnow()
    )
    await session.commit()
    return render(
        request,
        "admin_secret.html",
        {"account": account, "secret": secret, "created": False},
        user=user,
    )
