"""Signing in to the web app: sessions and their expiry; failures are throttled and audited
by the accounts domain, as on the API.

Invariants:
- A session is found only by the SHA-256 of its cookie token; it ends at sign-out, after
  ``idle`` without a request, or ``lifetime`` after sign-in, whichever comes first, and an
  ended session is deleted when it is next presented.
- A sign-in refused for too many recent failures does not check the password at all.
- Every checked wrong secret writes ``auth:failed`` (``broker/accounts/throttling.py``), and
  every success ``signin:succeeded``, in the caller's transaction.
- Services flush, never commit: the view owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts.models import AccountKind
from broker.accounts.service import active_account
from broker.accounts.throttling import ThrottleLimits, authenticate_throttled
from broker.cases.models import Case
from broker.core import crypto
from broker.core.context import Actor, Caller, NodeContext
from broker.core.errors import PalermoError
from broker.messages.models import Message, MessageStatus
from broker.oversight.service import AuditKind, record_event
from broker.web.models import WebSession

# A session's last-seen time is written at most this often: idle timeouts are minutes long,
# and a write per page view would make every read a write.
TOUCH_INTERVAL = dt.timedelta(seconds=30)


class CsrfRefused(PalermoError):
    status, slug, title = 403, "csrf-refused", "The form could not be accepted"


@dataclass(frozen=True, slots=True)
class WebUser:
    """A signed-in person: the caller the domain services see, and their web session."""

    caller: Caller
    display_name: str
    session_id: str
    csrf_token: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    session: AsyncSession,
    *,
    node: NodeContext,
    login: str,
    secret: str,
    address: str,
    limits: ThrottleLimits,
    lifetime: dt.timedelta,
    now: dt.datetime,
) -> tuple[str, WebSession]:
    """Check a person's login and password and open a session; returns the cookie token and
    the session. Failures are throttled and audited as on the API
    (``broker/accounts/throttling.py``). Raises TooManyLogins (nothing checked), InvalidGrant
    (counted and audited: the caller commits)."""
    account = await authenticate_throttled(
        session,
        node=node,
        kind=AccountKind.PERSON,
        login=login,
        secret=secret,
        address=address,
        channel="web",
        limits=limits,
        now=now,
    )
    # Sessions that ended without sign-out are removed here, so the table stays small.
    await session.execute(delete(WebSession).where(WebSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    row = WebSession(
        id=token_digest(token),
        account_id=account.id,
        display_name=account.display_name,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.SIGNIN_SUCCEEDED,
        node=node.node_id,
        actor=Actor(account.participant_id, account.id),
        participant_id=account.participant_id,
        channel="web",
    )
    return token, row


async def resume(
    session: AsyncSession, *, token: str, idle: dt.timedelta, now: dt.datetime
) -> WebUser | None:
    """The signed-in person behind a cookie token, or None when the session is unknown,
    ended (it is then deleted) or its account is disabled."""
    row = await session.get(WebSession, token_digest(token))
    if row is None:
        return None
    if now >= row.expires_at or now - row.last_seen_at >= idle:
        await session.delete(row)
        await session.flush()
        return None
    account = await active_account(session, row.account_id)
    if account is None or account.kind != AccountKind.PERSON:
        return None
    if not account.accepts(row.created_at.timestamp()):  # opened before a password change
        await session.delete(row)
        await session.flush()
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
        await session.flush()
    caller = Caller(
        account_id=account.id,
        participant_id=account.participant_id,
        roles=account.roles,
        kind=account.kind,
        password_change_required=account.password_change_required,
    )
    return WebUser(
        caller=caller, display_name=row.display_name, session_id=row.id, csrf_token=row.csrf_token
    )


async def sign_out(session: AsyncSession, *, session_id: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_id))


async def awaiting_receipt(session: AsyncSession, *, caller: Caller, limit: int) -> list[Message]:
    """Messages delivered to the caller's participant by another and not yet acknowledged:
    those of an urgent case first, then the longest waiting. (A reading of the messages
    domain's tables that its service does not offer yet; it moves there when that service
    grows a filtered inbox.)

    Two bounded reads rather than one sort of the whole inbox: the urgent cases' messages
    (the participant's urgent cases are few), then the others in the order of the index on
    (recipient, status, delivered_at, id), which stops at ``limit``."""
    me = caller.participant_id
    waiting = (
        Message.recipient_id == me,
        # A case's drafting and vetting events go from the participant to itself: no one
        # acknowledges those.
        Message.sender_id != me,
        Message.status == MessageStatus.DELIVERED.value,
    )
    order = (Message.delivered_at, Message.id)
    urgent_cases = list(
        (
            await session.scalars(
                select(Case.id).where(
                    Case.urgent.is_(True), (Case.requesting_id == me) | (Case.requested_id == me)
                )
            )
        ).all()
    )
    ids: list[str] = []
    if urgent_cases:
        stmt = (
            select(Message.id)
            .where(Message.case_id.in_(urgent_cases), *waiting)
            .order_by(*order)
            .limit(limit)
        )
        ids = list((await session.scalars(stmt)).all())
    if len(ids) < limit:
        stmt = (
            select(Message.id)
            .outerjoin(Case, Case.id == Message.case_id)
            .where(*waiting, Case.urgent.is_not(True))
            .order_by(*order)
            .limit(limit - len(ids))
        )
        ids += list((await session.scalars(stmt)).all())
    if not ids:
        return []
    # Ids first, then the rows: the reads do not carry the envelopes.
    rows = {m.id: m for m in await session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [rows[i] for i in ids]


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the one it must carry."""
    if not expected or not given:
        return False
    return crypto.constant_time_equal(expected.encode(), given.encode())


__all__ = [
    "CsrfRefused",
    "WebUser",
    "awaiting_receipt",
    "csrf_matches",
    "resume",
    "sign_in",
    "sign_out",
]
