"""Operators' delivery API: dead letters, and each participant's adapter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from broker.delivery import service
from broker.delivery.schemas import (
    AdapterRead,
    AdapterUpdate,
    DeadLetterList,
    DeadLetterRead,
    RequeueRead,
)
from broker.http import Admin, NodeDep, SessionDep
from broker.participants.service import get_participant

router = APIRouter(prefix="/v1", tags=["delivery"])


@router.get("/delivery/dead-letters", response_model=DeadLetterList)
async def list_dead_letters(
    session: SessionDep,
    _caller: Admin,
    recipient: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterList:
    """Messages whose delivery ran out of attempts (or was refused for good), oldest first."""
    rows = await service.list_dead_letters(session, recipient=recipient, limit=limit)
    return DeadLetterList(
        items=[
            DeadLetterRead(
                message_id=d.message_id,
                recipient=d.recipient_id,
                sender=d.sender_id,
                type=d.message_type,
                adapter=d.adapter,
                attempts=d.attempts,
                last_error=d.last_error,
                accepted_at=d.accepted_at,
                dead_lettered_at=d.dead_lettered_at,
            )
            for d in rows
        ]
    )


@router.post("/delivery/dead-letters/{message_id}/requeue", response_model=RequeueRead)
async def requeue_dead_letter(
    message_id: str, session: SessionDep, node: NodeDep, caller: Admin
) -> RequeueRead:
    """Give a dead-lettered message a fresh set of attempts (audited as message:requeued)."""
    ids = await service.requeue_dead_letters(
        session, node_id=node.node_id, actor=caller.actor(), message_ids=[message_id]
    )
    await session.commit()
    return RequeueRead(requeued=ids)


@router.get("/participants/{participant_id}/adapter", response_model=AdapterRead)
async def get_adapter(participant_id: str, session: SessionDep, _caller: Admin) -> AdapterRead:
    p = await get_participant(session, participant_id)
    return AdapterRead(participant_id=p.id, adapter=p.adapter, config=dict(p.adapter_config))


@router.put("/participants/{participant_id}/adapter", response_model=AdapterRead)
async def set_adapter(
    participant_id: str, body: AdapterUpdate, session: SessionDep, node: NodeDep, caller: Admin
) -> AdapterRead:
    """Choose how messages reach this participant; the configuration is checked first."""
    p = await service.configure_adapter(
        session,
        node_id=node.node_id,
        participant_id=participant_id,
        adapter=body.adapter,
        config=body.config,
        actor=caller.actor(),
    )
    await session.commit()
    return AdapterRead(participant_id=p.id, adapter=p.adapter, config=dict(p.adapter_config))
