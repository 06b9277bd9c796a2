"""Anonymous matching between FIUs (FIU.md; P19): the broker carries keyed filters and a
hit / no-hit answer, and never a subject.

Invariants:
- A query is a signed ``fiu.match`` message whose only data category is ``keyed_filter``
  and whose body holds only filters (64 hex digits each: the shape of an HMAC-SHA-256),
  the exchange id and, optionally, the exchange key sealed to the partner: anything else
  (a name in clear, an attachment, a data subject) is refused before it is signed, and
  policy rule P19.query-keyed refuses it again.
- An answer is a signed ``fiu.match_result`` message whose body is the query id and
  ``hit`` or ``no_hit``, nothing else (P19.result-only); a query is answered once, by the
  partner it was sent to.
- A hit opens a draft FIU request from the asking FIU to the partner (P19), to be completed
  and submitted through the FIU request workflow.
- Query and answer rows are metadata, insert-only; each message's acceptance leaf is the
  query's or answer's one leaf (``match:queried``, ``match:answered``), with the count of
  filters and the result, never a filter.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases import service as cases
from broker.cases.bodies import FiuRequest
from broker.cases.config import CaseContext
from broker.cases.tables import FIU_REQUEST
from broker.core.context import Caller
from broker.core.errors import Conflict, Forbidden, NotFound, SchemaViolation, UnknownRecipient
from broker.core.ids import uuid7
from broker.fiu.models import MatchAnswer, MatchQuery
from broker.fiu.schemas import MatchCreate
from broker.oversight.service import AuditKind
from broker.participants.models import Participant

QUERY_TYPE = "fiu.match"
ANSWER_TYPE = "fiu.match_result"


async def _fiu(session: AsyncSession, participant_id: str, field: str) -> Participant:
    found = await session.get(Participant, participant_id)
    if found is None:
        raise UnknownRecipient(f"no participant {participant_id} is registered", field=field)
    if found.kind != "fiu":
        raise SchemaViolation(
            f"{participant_id} is not a financial intelligence unit: anonymous matching is "
            "between FIUs",
            field=field,
        )
    return found


async def query(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    create: MatchCreate,
) -> tuple[MatchQuery, messages.Accepted] | messages.Refused:
    """Send a matching query to a partner FIU. Flushes.

    Raises Forbidden (the caller is not an FIU), UnknownRecipient, SchemaViolation (the
    partner is not an FIU; too many or repeated filters; a sealed key that is not base64).
    """
    caller, now = ctx.caller, ctx.now
    max_filters = ctx.config.max_filters
    me = await session.get(Participant, caller.participant_id)
    if me is None or me.kind != "fiu":
        raise Forbidden("anonymous matching is between financial intelligence units")
    await _fiu(session, create.counterpart, "counterpart")
    if create.counterpart == caller.participant_id:
        raise Conflict("ask a partner FIU, not yourself")
    if len(create.filters) > max_filters:
        raise SchemaViolation(f"at most {max_filters} keyed filters per query", field="filters")
    if len(set(create.filters)) != len(create.filters):
        raise SchemaViolation("a keyed filter is repeated", field="filters")
    if create.sealed_key is not None:
        try:
            base64.b64decode(create.sealed_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SchemaViolation("sealed_key is not base64", field="sealed_key") from exc
    match_id = str(uuid7())
    body: dict[str, Any] = {
        "query_id": match_id,
        "exchange_id": create.exchange_id,
        "filters": create.filters,
    }
    if create.sealed_key is not None:
        body["sealed_key"] = create.sealed_key
    outcome = await messages.sign_and_accept(
        session,
        ctx=ctx,
        draft={
            "type": QUERY_TYPE,
            "recipient": create.counterpart,
            "legal_basis": create.legal_basis,
            "purpose": create.purpose,
            "data_categories": ["keyed_filter"],
            "body": body,
        },
        request=messages.AcceptRequest(
            known={"case_type": "fiu"},
            # The match record is the other FIU's at once: not held for approval.
            holdable=False,
            audit_kind=AuditKind.MATCH_QUERIED,
            audit_fields={
                "match_id": match_id,
                "exchange_id": create.exchange_id,
                "filter_count": len(create.filters),
            },
        ),
    )
    if isinstance(outcome, messages.Refused):
        return outcome
    row = MatchQuery(
        id=match_id,
        requester_id=caller.participant_id,
        counterpart_id=create.counterpart,
        exchange_id=create.exchange_id,
        filter_count=len(create.filters),
        message_id=outcome.message_id,
        purpose=create.purpose,
        legal_basis=create.legal_basis,
        created_by=caller.account_id,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row, outcome


async def get_match(
    session: AsyncSession, *, caller: Caller, match_id: str
) -> tuple[MatchQuery, MatchAnswer | None]:
    """The query and its answer, if the caller's FIU asked or was asked. Raises NotFound."""
    try:
        uuid.UUID(match_id)
    except ValueError as exc:
        raise NotFound(f"no matching query {match_id}") from exc
    row = await session.get(MatchQuery, match_id)
    if row is None or caller.participant_id not in (row.requester_id, row.counterpart_id):
        raise NotFound(f"no matching query {match_id}")
    answer = (
        await session.scalars(select(MatchAnswer).where(MatchAnswer.query_id == match_id))
    ).first()
    return row, answer


async def list_matches(
    session: AsyncSession, *, caller: Caller, limit: int
) -> list[tuple[MatchQuery, MatchAnswer | None]]:
    me = caller.participant_id
    rows = (
        await session.execute(
            select(MatchQuery, MatchAnswer)
            .outerjoin(MatchAnswer, MatchAnswer.query_id == MatchQuery.id)
            .where(or_(MatchQuery.requester_id == me, MatchQuery.counterpart_id == me))
            .order_by(MatchQuery.id.desc())
            .limit(limit)
        )
    ).all()
    return [(q, a) for q, a in rows]


async def answer(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    match_id: str,
    result: str,
) -> tuple[MatchQuery, MatchAnswer, messages.Accepted] | messages.Refused:
    """Answer a query hit or no hit; a hit opens a draft FIU request for the asking FIU.
    Flushes. Raises NotFound, Forbidden (the asker answers), Conflict (already answered)."""
    node, caller, now = ctx.node, ctx.caller, ctx.now
    row, existing = await get_match(session, caller=caller, match_id=match_id)
    if caller.participant_id != row.counterpart_id:
        raise Forbidden("only the partner FIU that was asked answers a matching query")
    if existing is not None:
        raise Conflict(f"this query was already answered: {existing.result}")
    outcome = await messages.sign_and_accept(
        session,
        ctx=ctx,
        draft={
            "type": ANSWER_TYPE,
            "recipient": row.requester_id,
            "in_reply_to": row.message_id,
            "legal_basis": row.legal_basis,
            "purpose": row.purpose,
            "data_categories": ["match_result"],
            "body": {"query_id": row.id, "result": result},
        },
        request=messages.AcceptRequest(
            known={"case_type": "fiu"},
            # The match record is the other FIU's at once: not held for approval.
            holdable=False,
            audit_kind=AuditKind.MATCH_ANSWERED,
            audit_fields={"match_id": row.id, "exchange_id": row.exchange_id, "result": result},
        ),
    )
    if isinstance(outcome, messages.Refused):
        return outcome
    draft_case_id = None
    if result == "hit":
        draft = await cases.open_draft_for(
            session,
            node=node,
            requesting_id=row.requester_id,
            requested_id=row.counterpart_id,
            opened_by=row.created_by,
            workflow=FIU_REQUEST.name,
            request=FiuRequest(purpose=row.purpose, legal_basis=row.legal_basis),
            origin=f"match:{row.id}",
            now=now,
        )
        draft_case_id = draft.id
    answered = MatchAnswer(
        query_id=row.id,
        result=result,
        message_id=outcome.message_id,
        answered_by=caller.account_id,
        created_at=now,
        draft_case_id=draft_case_id,
    )
    session.add(answered)
    await session.flush()
    return row, answered, outcome


__all__ = [
    "ANSWER_TYPE",
    "QUERY_TYPE",
    "answer",
    "get_match",
    "list_matches",
    "query",
]
