from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from broker.consents import forwarding, service
from broker.consents.models import Consent
from broker.consents.schemas import ConsentAnswer, ConsentCreate, ConsentPage, ConsentRead
from broker.core.context import CallContext
from broker.core.db import utcnow
from broker.http import Handler, NodeDep, SessionDep, SettingsDep
from broker.messages import Refused
from broker.messages.schemas import SubmitAccepted
from broker.messages.views import accepted_response
from broker.policy.views import PolicyDep

router = APIRouter(prefix="/v1", tags=["consents"])


def consent_read(c: Consent) -> ConsentRead:
    return ConsentRead(
        id=c.id,
        message_id=c.message_id,
        root_message_id=c.root_message_id,
        provider=c.provider_id,
        requester=c.requester_id,
        recipient=c.recipient_id,
        purpose=c.purpose,
        status=c.status,
        reasons=c.reasons,
        grounds=list(c.grounds),
        conditions=list(c.conditions or ()),
        valid_until=c.valid_until,
        request_message_id=c.request_message_id,
        answer_message_id=c.answer_message_id,
        requested_at=c.requested_at,
        answered_at=c.answered_at,
    )


@router.post(
    "/messages/{message_id}/consent-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentRead,
)
async def request_consent(
    message_id: str,
    create: ConsentCreate,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
) -> ConsentRead:
    """Ask the provider of a message you received to let ``recipient`` use its material for
    ``purpose``. The node signs the ``fiu.consent`` request with your custodial key."""
    outcome = await service.request_consent(
        session,
        ctx=CallContext(node, caller, policy, None, utcnow()),
        message_id=message_id,
        create=create,
    )
    await session.commit()
    if isinstance(outcome, Refused):
        raise outcome.error()
    return consent_read(outcome)


@router.get("/consents", response_model=ConsentPage)
async def list_consents(
    session: SessionDep,
    caller: Handler,
    settings: SettingsDep,
    status: Literal["requested", "granted", "refused"] | None = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> ConsentPage:
    """Consents your participant asked for or is asked for, newest first."""
    rows = await service.list_consents(
        session, caller=caller, status=status, limit=limit or settings.inbox_page_size
    )
    return ConsentPage(items=[consent_read(c) for c in rows])


@router.get("/consents/{consent_id}", response_model=ConsentRead)
async def get_consent(consent_id: str, session: SessionDep, caller: Handler) -> ConsentRead:
    return consent_read(await service.get_consent(session, caller=caller, consent_id=consent_id))


async def _answer(
    consent_id: str,
    answer: ConsentAnswer,
    grant: bool,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
) -> ConsentRead:
    outcome = await service.answer_consent(
        session,
        ctx=CallContext(node, caller, policy, None, utcnow()),
        consent_id=consent_id,
        grant=grant,
        answer=answer,
    )
    await session.commit()
    if isinstance(outcome, Refused):
        raise outcome.error()
    return consent_read(outcome)


@router.post("/consents/{consent_id}/grant", response_model=ConsentRead)
async def grant_consent(
    consent_id: str,
    answer: ConsentAnswer,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
) -> ConsentRead:
    """Grant a consent you are asked for: it widens exactly its recipient and purpose."""
    return await _answer(consent_id, answer, True, session, node, caller, policy)


@router.post("/consents/{consent_id}/refuse", response_model=ConsentRead)
async def refuse_consent(
    consent_id: str,
    answer: ConsentAnswer,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
) -> ConsentRead:
    """Refuse a consent you are asked for, with reasons (never on fiscal or secrecy grounds)."""
    return await _answer(consent_id, answer, False, session, node, caller, policy)


@router.post(
    "/messages/{message_id}/forward",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitAccepted,
    tags=["messages"],
    responses={200: {"model": SubmitAccepted, "description": "the same envelope, seen before"}},
)
async def forward_message(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
) -> Response:
    """Forward the material of a message you received: ``{"draft": {...}}`` (what you leave
    out is taken from the original; its restrictions are added) for the node to sign with your
    custodial key, or a self-signed envelope whose payload has ``forwarded_from``. Decided
    against the original's terms (purpose, handling code, named recipients, restrictions) and
    the consents its provider granted; a denial lists every failing rule and the consents
    that would lift it."""
    outcome = await forwarding.forward(
        session,
        ctx=CallContext(node, caller, policy, None, utcnow()),
        message_id=message_id,
        body=await request.body(),
    )
    await session.commit()
    return accepted_response(outcome)
