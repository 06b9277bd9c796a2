from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response, status

from broker import messages
from broker.core.context import CallContext
from broker.core.db import utcnow
from broker.core.paging import parse_cursor
from broker.envelopes.seal import seal_of
from broker.http import Handler, NodeDep, SessionDep, SettingsDep, Supervisor
from broker.messages.models import Message
from broker.messages.schemas import (
    ContentRead,
    EnvelopeRead,
    ExportItem,
    ExportPage,
    InboxItem,
    InboxPage,
    MessageRead,
    RetentionExtension,
    SentPage,
    SubmitAccepted,
)
from broker.policy.views import PolicyDep

router = APIRouter(prefix="/v1", tags=["messages"])


def message_read(m: Message, attempts: list[dict[str, Any]] | None = None) -> MessageRead:
    return MessageRead(
        id=m.id,
        type=m.type,
        sender=m.sender_id,
        recipient=m.recipient_id,
        case_id=m.case_id,
        in_reply_to=m.in_reply_to,
        status=m.status,
        created_at=m.created_at,
        accepted_at=m.accepted_at,
        delivered_at=m.delivered_at,
        receipted_at=m.receipted_at,
        legal_basis=m.legal_basis,
        purpose=m.purpose,
        handling_code=m.handling_code,
        urgent=m.urgent,
        payload_size=m.payload_size,
        envelope_sha256=m.envelope_sha256,
        policy_hash=m.policy_hash,
        policy_rules=list(m.policy_rules),
        retention_until=m.retention_until,
        erased_at=m.erased_at,
        receipt=EnvelopeRead.model_validate_json(m.receipt) if m.receipt else None,
        attempts=attempts or [],
    )


@router.post(
    "/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitAccepted,
    responses={200: {"model": SubmitAccepted, "description": "the same envelope, seen before"}},
)
async def submit_message(
    request: Request, session: SessionDep, node: NodeDep, caller: Handler, policy: PolicyDep
) -> Response:
    """Submit a self-signed DSSE envelope, or ``{"draft": {...}}`` for the node to sign with
    your participant's custodial key."""
    ctx = CallContext(node, caller, policy, None, utcnow())
    outcome = await messages.submit(session, ctx=ctx, body=await request.body())
    await session.commit()
    return accepted_response(outcome)


def accepted_response(outcome: messages.Accepted | messages.Refused) -> Response:
    """202 with the accepted message (200 for an envelope seen before), or the 403 problem of
    a refusal: the answer to a submission and to a forward."""
    if isinstance(outcome, messages.Refused):
        raise outcome.error()
    # The answer seals the envelope: a forward's payload is the original's content, which is
    # read through the logged content route, not handed out here.
    answer = {**outcome.to_dict(), "envelope": seal_of(outcome.envelope).model_dump()}
    return Response(
        orjson.dumps(answer, option=orjson.OPT_UTC_Z),
        status_code=200 if outcome.duplicate else 202,
        media_type="application/json",
        headers={"Location": f"/v1/messages/{outcome.message_id}"},
    )


@router.get("/messages", response_model=SentPage)
async def list_sent(
    session: SessionDep,
    caller: Handler,
    settings: SettingsDep,
    before: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> SentPage:
    rows = await messages.list_sent(
        session, caller=caller, limit=limit or settings.inbox_page_size, before=before
    )
    return SentPage(items=[message_read(m) for m in rows])


@router.get("/messages/export", response_model=ExportPage)
async def export_messages(
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    settings: SettingsDep,
    justification: Annotated[str | None, Query(max_length=1000)] = None,
    after: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Your participant's messages, each as its ciphertext and the content key sealed to your
    own encryption key: open them with your private key (``palermo client export``), not the
    node's. A logged consultation: one ``content:consulted`` leaf per page."""
    items, more = await messages.export_sealed(
        session,
        node=node,
        caller=caller,
        justification=justification,
        min_justification=settings.justification_min_length,
        after=after,
        limit=limit,
    )
    page = ExportPage(
        items=[
            ExportItem(
                id=i.message.id,
                type=i.message.type,
                sender=i.message.sender_id,
                recipient=i.message.recipient_id,
                accepted_at=i.message.accepted_at,
                envelope_sha256=i.message.envelope_sha256,
                role=i.role,
                enc_kid=i.enc_kid,
                sealed_key=_b64(i.sealed_key) if i.sealed_key is not None else None,
                ciphertext=_b64(i.message.ciphertext or b""),
            )
            for i in items
        ],
        next=items[-1].message.id if more else None,
    ).model_dump_json()
    await session.commit()
    return Response(page, media_type="application/json", headers={"Cache-Control": "no-store"})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@router.get("/messages/{message_id}", response_model=MessageRead)
async def get_message(message_id: str, session: SessionDep, caller: Handler) -> MessageRead:
    """Metadata and status, with every delivery attempt."""
    message = await messages.get_message_for(session, caller=caller, message_id=message_id)
    return message_read(message, await messages.attempts_of(session, message.id))


@router.get("/messages/{message_id}/content", response_model=ContentRead)
async def get_content(
    message_id: str,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    settings: SettingsDep,
    justification: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The decrypted envelope and payload. Every call is logged with its justification."""
    message, envelope, payload = await messages.read_content(
        session,
        node=node,
        caller=caller,
        message_id=message_id,
        justification=justification,
        min_justification=settings.justification_min_length,
    )
    # Serialised before the commit, so content that cannot be served leaves no consultation.
    body = ContentRead(
        id=message.id, envelope=EnvelopeRead.model_validate(envelope), payload=payload
    ).model_dump_json()
    await session.commit()
    return Response(
        body,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/messages/{message_id}/retention", response_model=MessageRead)
async def extend_retention(
    message_id: str,
    body: RetentionExtension,
    session: SessionDep,
    node: NodeDep,
    caller: Supervisor,
    settings: SettingsDep,
) -> MessageRead:
    """Extend the retention of a plain message your participant sent or received, by a
    reasoned review (P17): from ``PALERMO_RETENTION_REVIEW_DAYS`` before its deadline, to a
    later one, with reasons; one ``retention:extended`` leaf. A case's message follows its
    case (``POST /v1/cases/{id}/retention``)."""
    await messages.extend_message_retention(
        session,
        node=node,
        caller=caller,
        message_id=message_id,
        until=body.until,
        reason=body.reason,
        now=utcnow(),
        terms=messages.ReviewTerms.from_settings(settings),
    )
    await session.commit()
    message = await messages.get_message_for(session, caller=caller, message_id=message_id)
    return message_read(message, await messages.attempts_of(session, message.id))


@router.post("/messages/{message_id}/receipt", response_model=MessageRead)
async def receipt(
    message_id: str, request: Request, session: SessionDep, node: NodeDep, caller: Handler
) -> MessageRead:
    """Record your signed receipt (a ``receipt`` envelope), or send an empty body to have the
    node sign it with your custodial key."""
    message = await messages.record_receipt(
        session, node=node, caller=caller, message_id=message_id, body=await request.body()
    )
    await session.commit()
    return message_read(message)


@router.get("/inbox", response_model=InboxPage)
async def inbox(
    session: SessionDep,
    caller: Handler,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    urgent: Annotated[
        bool | None,
        Query(description="true: only urgent messages (urgent requests, notices of urgent cases)"),
    ] = None,
) -> InboxPage:
    """Messages delivered to your participant, oldest first; ``urgent=true`` narrows the
    list to urgent ones (the node relays those before any other)."""
    after = 0
    if cursor:
        after = parse_cursor(cursor)
    size = limit or settings.inbox_page_size
    if urgent is None:
        rows = await messages.list_inbox(session, caller=caller, after=after, limit=size)
    else:
        rows = await messages.filtered_inbox(
            session,
            caller=caller,
            where=messages.MessageFilter(urgent=urgent),
            after=after,
            limit=size,
        )
    items = [InboxItem(cursor=str(seq), message=message_read(m)) for seq, m in rows]
    return InboxPage(items=items, next_cursor=items[-1].cursor if items else cursor)
