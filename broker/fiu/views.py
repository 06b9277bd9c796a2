from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from broker import messages
from broker.cases.views import ClockDep, ConfigDep
from broker.core.context import CallContext, Caller
from broker.envelopes.seal import seal_of
from broker.fiu import service
from broker.fiu.models import MatchAnswer, MatchQuery
from broker.fiu.schemas import MatchAnswerCreate, MatchAnswered, MatchCreate, MatchPage, MatchRead
from broker.http import Handler, NodeDep, SessionDep
from broker.policy.views import PolicyDep

router = APIRouter(prefix="/v1/fiu", tags=["fiu"])


def match_read(q: MatchQuery, a: MatchAnswer | None, caller: Caller) -> MatchRead:
    return MatchRead(
        id=q.id,
        requester=q.requester_id,
        counterpart=q.counterpart_id,
        exchange_id=q.exchange_id,
        filter_count=q.filter_count,
        purpose=q.purpose,
        legal_basis=q.legal_basis,
        created_at=q.created_at,
        query_message_id=q.message_id,
        result=a.result if a else None,
        answered_at=a.created_at if a else None,
        answer_message_id=a.message_id if a else None,
        draft_case_id=a.draft_case_id if a and caller.participant_id == q.requester_id else None,
    )


@router.post("/matches", response_model=MatchRead, status_code=status.HTTP_201_CREATED)
async def create_match(
    body: MatchCreate,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
) -> MatchRead:
    """Ask a partner FIU whether it holds anything on subjects you send only as keyed
    filters. The partner reads the filters from its inbox and answers hit or no hit."""
    outcome = await service.query(
        session,
        ctx=CallContext(node, caller, policy, config, clock()),
        create=body,
    )
    await session.commit()
    if isinstance(outcome, messages.Refused):
        raise outcome.error()
    return match_read(outcome[0], None, caller)


@router.get("/matches", response_model=MatchPage)
async def list_matches(
    session: SessionDep,
    caller: Handler,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MatchPage:
    rows = await service.list_matches(session, caller=caller, limit=limit)
    return MatchPage(items=[match_read(q, a, caller) for q, a in rows])


@router.get("/matches/{match_id}", response_model=MatchRead)
async def get_match(match_id: str, session: SessionDep, caller: Handler) -> MatchRead:
    q, a = await service.get_match(session, caller=caller, match_id=match_id)
    return match_read(q, a, caller)


@router.post("/matches/{match_id}/answer", response_model=MatchAnswered)
async def answer_match(
    match_id: str,
    body: MatchAnswerCreate,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
) -> MatchAnswered:
    """Answer hit or no hit, computed on your side from your holdings' keyed filters. A hit
    opens a draft FIU request for the asking FIU."""
    outcome = await service.answer(
        session,
        ctx=CallContext(node, caller, policy, config, clock()),
        match_id=match_id,
        result=body.result,
    )
    await session.commit()
    if isinstance(outcome, messages.Refused):
        raise outcome.error()
    q, a, accepted = outcome
    return MatchAnswered(match=match_read(q, a, caller), envelope=seal_of(accepted.envelope))
