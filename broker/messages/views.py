from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.core.context import CallContext, Caller
from broker.core.db import utcnow
from broker.core.paging import parse_cursor
from broker.envelopes.seal import seal_of
from broker.http import Handler, NodeDep, SessionDep, SettingsDep, Supervisor
from broker.messages.models import FollowUp, Message, MessageApproval
from broker.messages.reading import Shown
from broker.messages.schemas import (
    ApprovalQueue,
    ApprovalRead,
    ApprovalRejection,
    ContentRead,
    EnvelopeRead,
    ExportItem,
    ExportPage,
    FollowUpPage,
    FollowUpRead,
    InboxItem,
    InboxPage,
    MessageRead,
    PendingApproval,
    RetentionExtension,
    SentPage,
    SubmitAccepted,
)
from broker.policy.views import PolicyDep

router = APIRouter(prefix="/v1", tags=["messages"])


def approval_read(a: MessageApproval) -> ApprovalRead:
    return ApprovalRead(
        status=a.status,
        rules=list(a.rules),
        texts=list(a.texts),
        requested_at=a.requested_at,
        decided_at=a.decided_at,
        reason=a.reason,
    )


def message_read(
    m: Message, attempts: list[dict[str, Any]] | None = None, shown: Shown | None = None
) -> MessageRead:
    shown = shown or Shown()
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
        handling_restriction=shown.handling_restriction,
        handling_texts=list(shown.handling_texts),
        restrictions=list(shown.restrictions),
        approval=approval_read(shown.approval) if shown.approval else None,
    )


async def message_reads(
    session: AsyncSession,
    caller: Caller,
    rows: list[Message],
    attempts: list[dict[str, Any]] | None = None,
) -> list[MessageRead]:
    """``message_read`` of each row, with what its metadata shows (``messages.shown_for``)."""
    shown = await messages.shown_for(session, caller=caller, rows=rows)
    return [message_read(m, attempts, shown.get(m.id)) for m in rows]


async def one_read(session: AsyncSession, caller: Caller, message: Message) -> MessageRead:
    """The view of one message, with its delivery attempts."""
    attempts = await messages.attempts_of(session, message.id)
    return (await message_reads(session, caller, [message], attempts))[0]


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
    return SentPage(items=await message_reads(session, caller, list(rows)))


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
    return await one_read(session, caller, message)


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
    return await one_read(session, caller, message)


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
    return (await message_reads(session, caller, [message]))[0]


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
    reads = await message_reads(session, caller, [m for _, m in rows])
    items = [InboxItem(cursor=str(seq), message=r) for (seq, _), r in zip(rows, reads, strict=True)]
    return InboxPage(items=items, next_cursor=items[-1].cursor if items else cursor)


# --- messages held for a supervisor's approval (require_approval; LED art. 38(2)) ----------


@router.get("/approvals", response_model=ApprovalQueue)
async def approval_queue(session: SessionDep, caller: Supervisor) -> ApprovalQueue:
    """Your participant's messages held for a supervisor's approval, oldest first; those you
    submitted yourself are listed too, and another supervisor decides them (four eyes)."""
    pending = await messages.pending_approvals(session, caller=caller)
    reads = await message_reads(session, caller, [m for _, m in pending])
    return ApprovalQueue(
        items=[
            PendingApproval(
                message=r,
                approval=approval_read(a),
                drafted_by_you=a.drafter_account == caller.account_id,
            )
            for (a, _), r in zip(pending, reads, strict=True)
        ]
    )


@router.post("/approvals/{message_id}/approve", response_model=MessageRead)
async def approve_message(
    message_id: str, session: SessionDep, node: NodeDep, caller: Supervisor
) -> MessageRead:
    """Release a held message of your participant that you did not submit: it is queued for
    delivery; one ``message:approved`` leaf; its follow-ups open."""
    message = await messages.approve(
        session, node=node, caller=caller, message_id=message_id, now=utcnow()
    )
    await session.commit()
    return await one_read(session, caller, message)


@router.post("/approvals/{message_id}/reject", response_model=MessageRead)
async def reject_message(
    message_id: str,
    body: ApprovalRejection,
    session: SessionDep,
    node: NodeDep,
    caller: Supervisor,
) -> MessageRead:
    """Refuse a held message of your participant that you did not submit, with reasons: it
    never leaves; one ``message:rejected`` leaf (the reasons as a commitment)."""
    message = await messages.reject(
        session, node=node, caller=caller, message_id=message_id, reason=body.reason, now=utcnow()
    )
    await session.commit()
    return await one_read(session, caller, message)


# --- follow-ups (follow_up obligations: P5.late, P20.national) -----------------------------


def follow_up_read(f: FollowUp) -> FollowUpRead:
    return FollowUpRead(
        id=f.id,
        participant=f.participant_id,
        what=f.what,
        rule=f.rule_id,
        message_id=f.message_id,
        case_id=f.case_id,
        opened_at=f.opened_at,
        due_at=f.due_at,
        status=f.status,
        reminded_at=f.reminded_at,
        done_at=f.done_at,
    )


@router.get("/follow-ups", response_model=FollowUpPage)
async def follow_ups(
    session: SessionDep,
    caller: Handler,
    state: Annotated[Literal["open", "done", "all"], Query(alias="status")] = "open",
) -> FollowUpPage:
    """The tracked items your participant is responsible for, earliest due first
    (``?status=open``, the default, ``done`` or ``all``)."""
    rows = await messages.list_follow_ups(
        session, caller=caller, status=None if state == "all" else state
    )
    return FollowUpPage(items=[follow_up_read(f) for f in rows])


@router.post("/follow-ups/{follow_up_id}/done", response_model=FollowUpRead)
async def follow_up_done(
    follow_up_id: str, session: SessionDep, node: NodeDep, caller: Handler
) -> FollowUpRead:
    """Mark an item of your participant done; one ``follow_up:done`` leaf."""
    item = await messages.complete_follow_up(
        session, node=node, caller=caller, follow_up_id=follow_up_id, now=utcnow()
    )
    read = follow_up_read(item)
    await session.commit()
    return read
