"""The web app's routes: thin, like the API's. Each calls the domain services the API calls,
in one transaction it commits before the page is sent, and renders a template.

Who may open what is declared by the dependency of each route (``SignedIn`` for any person
who signed in, ``Handling`` for officers and supervisors); tests/unit/web holds the matrix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts import service as accounts_service
from broker.accounts.models import AccountKind
from broker.accounts.service import MIN_PASSWORD_LENGTH
from broker.accounts.throttling import ThrottleLimits, TooManyLogins, authenticate_throttled
from broker.core.db import utcnow
from broker.core.errors import Forbidden, InvalidGrant, JustificationRequired
from broker.http import NodeDep, SessionDep, SettingsDep, client_address
from broker.messages import (
    STATUSES,
    MessageFilter,
    ReviewTerms,
    attempts_of,
    filtered_inbox,
    filtered_sent,
    get_message_for,
    message_types,
    read_content,
    record_receipt,
    terms_of,
    urgent_unread,
)
from broker.participants.service import list_participants
from broker.web import i18n, service
from broker.web.rendering import CSRF_COOKIE, SESSION_COOKIE, render, safe_next, set_cookie
from broker.web.review import review_of
from broker.web.service import CsrfRefused, WebUser

router = APIRouter(include_in_schema=False)
HANDLING_ROLES = ("officer", "supervisor")


class SignInRequired(Exception):
    """Raised by a page's dependency when nobody is signed in; answered with a redirect."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


class PasswordChangeFirst(Exception):
    """Raised for a person on a temporary password the node made, on any page but the
    password change and signing out; answered with a redirect to the change form."""


# The pages open to a person who must first choose their own password.
PASSWORD_FIRST_PATHS = frozenset({"/preferences/password", "/sign-out"})


def password_change_redirect(request: Request, exc: PasswordChangeFirst) -> Response:
    return RedirectResponse("/preferences/password?required=1", status_code=303)


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    target = "/sign-in?next=" + _quote(exc.next_path) + ("&expired=1" if exc.expired else "")
    response = RedirectResponse(target, status_code=303)
    if exc.expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


async def optional_user(
    request: Request, session: SessionDep, settings: SettingsDep
) -> WebUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user = await service.resume(
        session,
        token=token,
        idle=dt.timedelta(seconds=settings.web_session_idle_seconds),
        now=utcnow(),
    )
    # The touch of a live session, or the removal of an ended one, is its own small
    # transaction: it holds whatever the page goes on to do or fail.
    await session.commit()
    return user


async def signed_in(
    request: Request, user: Annotated[WebUser | None, Depends(optional_user)]
) -> WebUser:
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expired = bool(request.cookies.get(SESSION_COOKIE))
        raise SignInRequired(path if request.method == "GET" else "/", expired=expired)
    if user.caller.password_change_required and request.url.path not in PASSWORD_FIRST_PATHS:
        raise PasswordChangeFirst
    return user


def person_with(*roles: str) -> Callable[[WebUser], Awaitable[WebUser]]:
    allowed = frozenset(roles)

    async def dependency(user: Annotated[WebUser, Depends(signed_in)]) -> WebUser:
        if not user.caller.has_any(*allowed):
            raise Forbidden(f"this page needs one of the roles {sorted(allowed)}")
        return user

    return dependency


SignedIn = Annotated[WebUser, Depends(signed_in)]
MaybeSignedIn = Annotated[WebUser | None, Depends(optional_user)]
Handling = Annotated[WebUser, Depends(person_with(*HANDLING_ROLES))]
CsrfField = Annotated[str, Form()]


def check_csrf(request: Request, user: WebUser | None, given: str) -> None:
    """Raises CsrfRefused unless the form carries this session's (or this browser's
    pre-session) token."""
    expected = user.csrf_token if user is not None else request.cookies.get(CSRF_COOKIE, "")
    if not service.csrf_matches(expected, given):
        raise CsrfRefused("the form's security token is missing or out of date")


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


# --- signing in and out ------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_page(
    request: Request,
    settings: SettingsDep,
    user: MaybeSignedIn,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    expired: Annotated[int, Query()] = 0,
    signed_out: Annotated[int, Query()] = 0,
    password_changed: Annotated[int, Query()] = 0,
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request,
        "sign_in.html",
        {
            "next": safe_next(next),
            "login": "",
            "error": None,
            "notice": (
                "expired"
                if expired
                else "password-changed"
                if password_changed
                else ("signed-out" if signed_out else None)
            ),
            "retry_minutes": 1,
        },
        user=None,
    )


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
    login: Annotated[str, Form(max_length=120)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_csrf(request, None, csrf_token)
    context: dict[str, Any] = {
        "next": safe_next(next),
        "login": login,
        "notice": None,
        "retry_minutes": 1,
    }
    if not login or not password:
        context["error"] = "missing"
        return render(request, "sign_in.html", context, user=None, status=400)
    limits = ThrottleLimits.from_settings(settings)
    try:
        token, _row = await service.sign_in(
            session,
            node=node,
            login=login,
            secret=password,
            address=client_address(request, settings),
            limits=limits,
            lifetime=dt.timedelta(seconds=settings.web_session_lifetime_seconds),
            now=utcnow(),
        )
    except TooManyLogins as exc:
        context["error"] = "throttled"
        retry_after = int(exc.extra["retry_after"])
        context["retry_minutes"] = _minutes(retry_after)
        retry = str(retry_after)
        return render(
            request, "sign_in.html", context, user=None, status=429, headers={"Retry-After": retry}
        )
    except InvalidGrant:
        await session.commit()
        context["error"] = "wrong"
        return render(request, "sign_in.html", context, user=None, status=401)
    await session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(response, settings, SESSION_COOKIE, token)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, session: SessionDep, user: SignedIn, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, user, csrf_token)
    await service.sign_out(session, session_id=user.session_id)
    await session.commit()
    response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- preferences -------------------------------------------------------------------------


@router.post("/language")
async def choose_language(
    request: Request,
    settings: SettingsDep,
    user: MaybeSignedIn,
    csrf_token: CsrfField = "",
    language: Annotated[str, Form(max_length=8)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_csrf(request, user, csrf_token)
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in i18n.LANGUAGES:
        set_cookie(response, settings, i18n.LANGUAGE_COOKIE, language, max_age=365 * 86_400)
    return response


@router.get("/preferences")
async def preferences_page(request: Request, settings: SettingsDep, user: SignedIn) -> Response:
    current = i18n.timezone_or(
        request.cookies.get(i18n.TIMEZONE_COOKIE), settings.web_default_timezone
    )
    return render(
        request,
        "preferences.html",
        {"timezones": i18n.timezones(), "current_timezone": current, "saved": False},
        user=user,
    )


@router.post("/preferences")
async def save_preferences(
    request: Request,
    settings: SettingsDep,
    user: SignedIn,
    csrf_token: CsrfField = "",
    timezone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    if timezone not in i18n.timezones():
        return render(
            request,
            "preferences.html",
            {
                "timezones": i18n.timezones(),
                "current_timezone": timezone,
                "saved": False,
                "error": "timezone",
            },
            user=user,
            status=422,
        )
    response = RedirectResponse("/preferences?saved=1", status_code=303)
    set_cookie(response, settings, i18n.TIMEZONE_COOKIE, timezone, max_age=365 * 86_400)
    return response


@router.get("/preferences/password")
async def password_page(request: Request, user: SignedIn) -> Response:
    return render(
        request,
        "password.html",
        {
            "error": None,
            "min_length": MIN_PASSWORD_LENGTH,
            "retry_minutes": 1,
            "required": user.caller.password_change_required,
        },
        user=user,
    )


@router.post("/preferences/password")
async def change_password(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: SignedIn,
    csrf_token: CsrfField = "",
    current_password: Annotated[str, Form(max_length=1000)] = "",
    new_password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The same service as ``PUT /v1/accounts/me/password``: the current password is checked
    and throttled as a sign-in; on success every session of the account ends, this one too."""
    check_csrf(request, user, csrf_token)
    context: dict[str, Any] = {
        "min_length": MIN_PASSWORD_LENGTH,
        "retry_minutes": 1,
        "required": user.caller.password_change_required,
    }
    if len(new_password) < MIN_PASSWORD_LENGTH:
        return render(
            request, "password.html", {**context, "error": "short"}, user=user, status=422
        )
    login = (await accounts_service.get_account(session, user.caller.account_id)).login
    now = utcnow()
    try:
        account = await authenticate_throttled(
            session,
            node=node,
            kind=AccountKind.PERSON,
            login=login,
            secret=current_password,
            address=client_address(request, settings),
            channel="web",
            limits=ThrottleLimits.from_settings(settings),
            now=now,
        )
    except TooManyLogins as exc:
        retry_after = int(exc.extra["retry_after"])
        context.update(error="throttled", retry_minutes=_minutes(retry_after))
        return render(
            request,
            "password.html",
            context,
            user=user,
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    except InvalidGrant:
        await session.commit()
        return render(
            request, "password.html", {**context, "error": "wrong"}, user=user, status=401
        )
    await accounts_service.change_password(
        session, node=node, account=account, new_password=new_password, now=now
    )
    await session.commit()
    response = RedirectResponse("/sign-in?password_changed=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- lists ------------------------------------------------------------------------------


def _filter(
    type: str | None, counterpart: str | None, status: str | None, handling: str | None
) -> MessageFilter:
    return MessageFilter(type=type, counterpart=counterpart, status=status, handling_code=handling)


FilterParam = Annotated[str | None, Query(max_length=64)]


async def _filter_context(
    session: SessionDep, user: WebUser, where: MessageFilter, path: str
) -> dict[str, Any]:
    query = {
        k: v
        for k, v in (
            ("type", where.type),
            ("counterpart", where.counterpart),
            ("status", where.status),
            ("handling", where.handling_code),
        )
        if v
    }
    return {
        "filter": where,
        "filter_query": ("&" + urlencode(query)) if query else "",
        "types": await message_types(session, caller=user.caller),
        "participants": await list_participants(session),
        "statuses": STATUSES,
        "handling_codes": ("H0", "H1", "H2", "H3"),
        "path": path,
    }


@router.get("/inbox")
async def inbox(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Handling,
    cursor: Annotated[int, Query(ge=0)] = 0,
    type: FilterParam = None,
    counterpart: FilterParam = None,
    status: FilterParam = None,
    handling: FilterParam = None,
) -> Response:
    size = settings.inbox_page_size
    where = _filter(type, counterpart, status, handling)
    rows = await filtered_inbox(
        session, caller=user.caller, where=where, after=cursor, limit=size + 1
    )
    context = await _filter_context(session, user, where, "/inbox")
    # Urgent messages not yet acknowledged come first, above the pages (no filter set).
    urgent = (
        await urgent_unread(session, caller=user.caller, limit=size)
        if cursor == 0 and not where.active()
        else []
    )
    await session.commit()
    more = len(rows) > size
    rows = rows[:size]
    context.update(
        urgent=urgent,
        items=[m for _seq, m in rows],
        next_cursor=rows[-1][0] if more and rows else None,
        first=cursor == 0,
    )
    return render(request, "inbox.html", context, user=user)


@router.get("/sent")
async def sent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Handling,
    before: Annotated[str | None, Query(max_length=36)] = None,
    type: FilterParam = None,
    counterpart: FilterParam = None,
    status: FilterParam = None,
    handling: FilterParam = None,
) -> Response:
    size = settings.inbox_page_size
    where = _filter(type, counterpart, status, handling)
    rows = await filtered_sent(
        session, caller=user.caller, where=where, before=before, limit=size + 1
    )
    context = await _filter_context(session, user, where, "/sent")
    await session.commit()
    more = len(rows) > size
    rows = rows[:size]
    context.update(items=rows, next_before=rows[-1].id if more and rows else None, first=not before)
    return render(request, "sent.html", context, user=user)


# --- one message -------------------------------------------------------------------------


async def _message_context(
    session: SessionDep, user: WebUser, message_id: str, *, min_justification: int
) -> dict[str, Any]:
    message = await get_message_for(session, caller=user.caller, message_id=message_id)
    terms = await terms_of(session, message)
    receipt = orjson.loads(message.receipt) if message.receipt else None
    return {
        "message": message,
        "terms": terms,
        "attempts": await attempts_of(session, message.id),
        "receipt_kid": receipt["signatures"][0]["keyid"] if receipt else None,
        "is_recipient": message.recipient_id == user.caller.participant_id,
        "justification": "",
        "error": None,
        "min_justification": min_justification,
    }


@router.get("/messages/{message_id}")
async def message_page(
    message_id: str, request: Request, session: SessionDep, settings: SettingsDep, user: Handling
) -> Response:
    context = await _message_context(
        session, user, message_id, min_justification=settings.justification_min_length
    )
    await session.commit()
    terms = ReviewTerms.from_settings(settings)
    context["review"] = review_of(context["message"].retention_until, terms, utcnow(), user)
    return render(request, "message.html", context, user=user)


@router.post("/messages/{message_id}/content")
async def message_content(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Handling,
    csrf_token: CsrfField = "",
    justification: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    try:
        message, envelope, payload = await read_content(
            session,
            node=node,
            caller=user.caller,
            message_id=message_id,
            justification=justification,
            min_justification=settings.justification_min_length,
        )
    except JustificationRequired as exc:
        await session.rollback()
        context = await _message_context(
            session, user, message_id, min_justification=settings.justification_min_length
        )
        context.update(justification=justification, error=exc.detail)
        await session.commit()
        return render(request, "message.html", context, user=user, status=422)
    terms = await terms_of(session, message)
    await session.commit()
    return render(
        request,
        "content.html",
        {
            "message": message,
            "terms": terms,
            "justification": justification,
            "keyids": [s["keyid"] for s in envelope.get("signatures", [])],
            "body": orjson.dumps(payload.get("body"), option=orjson.OPT_INDENT_2).decode(),
            "payload": payload,
        },
        user=user,
    )


@router.post("/messages/{message_id}/receipt")
async def acknowledge(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Handling,
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    await record_receipt(session, node=node, caller=user.caller, message_id=message_id, body=b"")
    await session.commit()
    return RedirectResponse(f"/messages/{message_id}?acknowledged=1", status_code=303)


# The home, audit, case, compose, forward, consent, FIU and oversight pages, the
# operator's pages (role admin) and the reference data live in their own modules and add
# their routes to this router.
import broker.web.compose  # noqa: E402, F401
from broker.web import (  # noqa: E402, F401
    admin_account_views,
    admin_delivery_views,
    admin_views,
    approval_views,
    audit_views,
    case_views,
    consent_views,
    fiu_views,
    forward_views,
    home_views,
    oversight_views,
    retention_views,
    thread_views,
)
