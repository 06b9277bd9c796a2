"""Failed logins, throttled per login and per client address, and audited.

The same rules hold for a person's password (API token endpoint, web sign-in) and a
system's client credentials.

Invariants:
- A login or an address that must wait (exponential delay after the free failures) or is
  locked out is refused before any password is checked: the right password is refused too.
- Every checked wrong secret writes ``auth:failed``; the failure that starts a lockout writes
  ``auth:locked``. Leaves name the account's participant when the login exists, the login
  only as a keyed digest (as account leaves do), and the client address as a keyed digest
  too (``address_digest``: attempts from one address correlate, the address is not kept);
  never the secret.
  Refusals without a check are logged, not audited, so a flood cannot grow the audit log.
- The table holds keyed digests only, never a login or an address in clear.
- Services flush, never commit: the caller commits the failure before answering.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts.models import Account, AccountKind, LoginThrottle
from broker.accounts.service import address_digest, authenticate, login_digest
from broker.core import metrics
from broker.core.context import NodeContext
from broker.core.errors import InvalidGrant, PalermoError
from broker.core.logging import get_logger
from broker.core.settings import Settings
from broker.oversight.service import AuditKind, record_event

log = get_logger(__name__)


class TooManyLogins(PalermoError):  # noqa: N818 - named as its problem type
    status, slug, title = 429, "too-many-logins", "Too many failed logins"


@dataclass(frozen=True, slots=True)
class Threshold:
    free: int
    lockout: int


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    login: Threshold
    address: Threshold
    base_delay: float
    max_delay: float
    lockout: dt.timedelta
    memory: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottleLimits:
        return cls(
            login=Threshold(settings.auth_free_failures, settings.auth_lockout_failures),
            address=Threshold(
                settings.auth_address_free_failures, settings.auth_address_lockout_failures
            ),
            base_delay=settings.auth_base_delay_seconds,
            max_delay=settings.auth_max_delay_seconds,
            lockout=dt.timedelta(seconds=settings.auth_lockout_seconds),
            memory=dt.timedelta(seconds=settings.auth_failure_memory_seconds),
        )


def _keys(node: NodeContext, login: str, address: str) -> tuple[str, str]:
    return f"login:{login_digest(node, login)}", f"address:{address_digest(node, address)}"


def _wait(
    row: LoginThrottle | None, threshold: Threshold, limits: ThrottleLimits, now: dt.datetime
) -> tuple[float, bool]:
    """Seconds to wait before the next try, and whether that is a lockout."""
    if row is None:
        return 0.0, False
    if row.locked_until is not None:
        if row.locked_until > now:
            return (row.locked_until - now).total_seconds(), True
        return 0.0, False  # the lockout has passed: the count starts again
    if now - row.last_failure_at >= limits.memory:
        return 0.0, False
    excess = row.failures - threshold.free
    if excess < 0:
        return 0.0, False
    delay = min(limits.max_delay, limits.base_delay * 2.0 ** min(excess, 60))
    return max(0.0, (row.last_failure_at - now).total_seconds() + delay), False


async def check_allowed(
    session: AsyncSession,
    *,
    node: NodeContext,
    login: str,
    address: str,
    limits: ThrottleLimits,
    now: dt.datetime,
) -> None:
    """Raises TooManyLogins (with ``retry_after`` in seconds) when this login or this address
    must wait or is locked out."""
    login_key, address_key = _keys(node, login, address)
    rows = {
        r.key: r
        for r in await session.scalars(
            select(LoginThrottle).where(LoginThrottle.key.in_([login_key, address_key]))
        )
    }
    by_login, login_locked = _wait(rows.get(login_key), limits.login, limits, now)
    by_address, address_locked = _wait(rows.get(address_key), limits.address, limits, now)
    wait = max(by_login, by_address)
    if wait <= 0:
        return
    locked = login_locked or address_locked
    retry_after = max(1, math.ceil(wait))
    log.warning(
        "login refused without a check",
        login_digest=login_key.removeprefix("login:"),
        address=address,
        locked=locked,
        retry_after=retry_after,
    )
    what = "locked out" if locked else "delayed"
    raise TooManyLogins(
        f"too many failed logins for this login or from this address: {what}, try again in"
        f" {retry_after} s",
        retry_after=retry_after,
    )


async def _count_failure(
    session: AsyncSession,
    *,
    key: str,
    threshold: Threshold,
    limits: ThrottleLimits,
    now: dt.datetime,
) -> bool:
    """Count one failure against ``key`` (an atomic upsert: concurrent failures all count);
    True when this failure starts a lockout."""
    stale = or_(
        LoginThrottle.locked_until <= now,
        LoginThrottle.last_failure_at < now - limits.memory,
    )
    values = {"key": key, "failures": 1, "last_failure_at": now, "locked_until": None}
    set_ = {
        "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
        "locked_until": case((stale, None), else_=LoginThrottle.locked_until),
        "last_failure_at": now,
    }
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(LoginThrottle).values(values)
        await session.execute(pg.on_conflict_do_update(index_elements=["key"], set_=set_))
    else:
        lite = sqlite.insert(LoginThrottle).values(values)
        await session.execute(lite.on_conflict_do_update(index_elements=["key"], set_=set_))
    locked = await session.execute(
        update(LoginThrottle)
        .where(
            LoginThrottle.key == key,
            LoginThrottle.failures >= threshold.lockout,
            LoginThrottle.locked_until.is_(None),
        )
        .values(locked_until=now + limits.lockout)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(locked, "rowcount", 0))


async def record_failure(
    session: AsyncSession,
    *,
    node: NodeContext,
    login: str,
    address: str,
    channel: str,
    limits: ThrottleLimits,
    now: dt.datetime,
) -> None:
    """Count a checked wrong secret against the login and the address; audit it
    (``auth:failed``, and ``auth:locked`` for each of the two a lockout starts on)."""
    login_key, address_key = _keys(node, login, address)
    participant_id = await session.scalar(
        select(Account.participant_id).where(Account.login == login)
    )
    locked_login = await _count_failure(
        session, key=login_key, threshold=limits.login, limits=limits, now=now
    )
    locked_address = await _count_failure(
        session, key=address_key, threshold=limits.address, limits=limits, now=now
    )
    digest = login_digest(node, login)
    fields: dict[str, Any] = {
        "participant": participant_id,
        "login_digest": digest,
        "address_digest": address_digest(node, address),
        "channel": channel,
    }
    log.warning("login failed", login_digest=digest, address=address, channel=channel)
    metrics.LOGIN_FAILURES.inc()
    await record_event(
        session,
        kind=AuditKind.AUTH_FAILED,
        node=node.node_id,
        actor=None,
        participant_id=participant_id,
        **fields,
    )
    for scope, locked in (("login", locked_login), ("address", locked_address)):
        if locked:
            log.warning("login locked out", scope=scope, login_digest=digest, address=address)
            metrics.LOGIN_LOCKOUTS.labels(scope).inc()
            await record_event(
                session,
                kind=AuditKind.AUTH_LOCKED,
                node=node.node_id,
                actor=None,
                participant_id=participant_id,
                scope=scope,
                locked_until=(now + limits.lockout).isoformat(),
                **fields,
            )
    await session.flush()


async def authenticate_throttled(
    session: AsyncSession,
    *,
    node: NodeContext,
    kind: AccountKind,
    login: str,
    secret: str,
    address: str,
    channel: str,
    limits: ThrottleLimits,
    now: dt.datetime,
) -> Account:
    """``authenticate`` behind the throttle: refused unchecked while the login or address
    must wait, failures counted and audited, a success clears the login's count (not the
    address's: signing in to one's own account must not reset a guessing run from the
    same address). The caller commits, also when this raises InvalidGrant.

    Raises TooManyLogins, InvalidGrant."""
    await check_allowed(session, node=node, login=login, address=address, limits=limits, now=now)
    try:
        account = await authenticate(session, kind=kind, login=login, secret=secret)
    except InvalidGrant:
        await record_failure(
            session,
            node=node,
            login=login,
            address=address,
            channel=channel,
            limits=limits,
            now=now,
        )
        raise
    login_key, _ = _keys(node, login, address)
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == login_key))
    return account


__all__ = [
    "ThrottleLimits",
    "TooManyLogins",
    "authenticate_throttled",
    "check_allowed",
    "record_failure",
]
