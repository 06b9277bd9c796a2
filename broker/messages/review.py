"""Extending a retention by a reasoned review (P17: "erased at expiry unless a reasoned review
extends it"; LED art. 5: "appropriate time limits ... for a periodic review of the need for
the storage").

A review opens ``review`` before the deadline: from then on a supervisor of a participant
that holds the item may extend it once, with reasons, to a new deadline at most
``max_extension`` from now. The new deadline opens the next review; nothing is ever kept
without one. Each extension writes one ``retention:extended`` leaf with the deadline before
and after and the reasons. A plain message's deadline is extended here; a message of a case
follows its case (``broker.cases.service.extend_case_retention``).

Invariants: a deadline only moves later; never outside the review window; never past
``max_extension`` from the review; an erased item is never extended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Caller, NodeContext
from broker.core.errors import InvalidState, SchemaViolation
from broker.core.settings import Settings
from broker.core.text import no_control_characters
from broker.messages.reading import erased_error, get_message_for
from broker.oversight.service import AuditKind, record_event


@dataclass(frozen=True, slots=True)
class ReviewTerms:
    """When a review opens before a deadline, and how far one may extend it."""

    review: dt.timedelta
    max_extension: dt.timedelta
    min_reason: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewTerms:
        return cls(
            review=dt.timedelta(days=settings.retention_review_days),
            max_extension=dt.timedelta(days=settings.retention_max_extension_days),
            min_reason=settings.justification_min_length,
        )


def review_opens(deadline: dt.datetime, terms: ReviewTerms) -> dt.datetime:
    return deadline - terms.review


def checked_extension(
    *,
    deadline: dt.datetime | None,
    until: dt.datetime,
    reason: str,
    now: dt.datetime,
    terms: ReviewTerms,
) -> str:
    """The stripped reasons of a valid extension of ``deadline`` to ``until``, decided at
    ``now``.

    Raises:
        InvalidState: no deadline runs, or the review has not opened yet.
        SchemaViolation: ``until`` is not later than the deadline, or past the longest
            extension; the reasons are too short or hold a control character.
    """
    if deadline is None:
        raise InvalidState("no retention deadline runs yet: it starts at the end of the case")
    opens = review_opens(deadline, terms)
    if now < opens:
        raise InvalidState(
            f"the review of this retention opens on {opens.date().isoformat()}, "
            f"{terms.review.days} days before it ends on {deadline.date().isoformat()}",
            field="until",
        )
    if until.tzinfo is None:
        raise SchemaViolation("give the new deadline with its time zone", field="until")
    if until <= deadline:
        raise SchemaViolation(
            f"the new deadline must be after the current one ({deadline.date().isoformat()})",
            field="until",
        )
    longest = now + terms.max_extension
    if until > longest:
        raise SchemaViolation(
            f"a review extends a retention by at most {terms.max_extension.days} days: "
            f"until {longest.date().isoformat()} at the latest",
            field="until",
        )
    text = reason.strip()
    if len(text) < terms.min_reason:
        raise SchemaViolation(
            f"give the reasons of the review: at least {terms.min_reason} characters",
            field="reason",
        )
    try:
        return no_control_characters(text)
    except ValueError as exc:
        raise SchemaViolation(f"reason: {exc}", field="reason") from exc


async def extend_message_retention(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    message_id: str,
    until: dt.datetime,
    reason: str,
    now: dt.datetime,
    terms: ReviewTerms,
) -> dt.datetime:
    """Extend a plain message's retention to ``until`` by a reasoned review of ``caller``'s
    participant (its sender or recipient); return the new deadline. Flushes.

    Raises:
        NotFound: not a message the caller's participant holds.
        ContentErased: it was erased already.
        InvalidState: it follows a case, or the review has not opened.
        SchemaViolation: see `checked_extension`.
    """
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if message.erased_at is not None:
        raise erased_error(message)
    if message.case_id is not None:
        raise InvalidState(
            "this message follows its case's retention: review the case's", field="until"
        )
    before = message.retention_until
    text = checked_extension(deadline=before, until=until, reason=reason, now=now, terms=terms)
    message.retention_until = until
    await record_event(
        session,
        kind=AuditKind.RETENTION_EXTENDED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        message_id=message.id,
        at=now,
        item="message",
        retention_until_before=before,
        retention_until=until,
        texts={"reason": text},
    )
    await session.flush()
    return until
