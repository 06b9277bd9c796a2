"""Approval of held messages: the consumer of the ``require_approval`` obligation outside the
case workflows (issue 14 item 1; P16.derogation, LED art. 38(2): a transfer on a specific
derogation is documented and approved by a supervisor for the situation at hand).

``broker.messages.ingress.accept`` holds a permitted message whose decision carries a
``require_approval`` obligation, unless its caller's workflow carries the approval out
itself (a case event: the four-eyes guard of P1): the message is stored with status
``pending_approval``, its ``message:held`` leaf, a ``message_approvals`` row and no outbox
row. A supervisor of the sending participant who is not the account that submitted it then
approves (status ``accepted``, the outbox row, ``message:approved``, and the ``follow_up``
obligations opened) or rejects it with reasons (status ``rejected``, ``message:rejected``:
it never leaves).

Invariants:
- nothing of a held message leaves the node before its approval: it has no outbox row, no
  inbox entry, and its recipient gets NotFound for it (``broker.messages.reading``);
- only a supervisor of the sending participant decides, never the drafter (four eyes), and
  only once; everyone of another participant gets NotFound;
- each decision is one audit leaf, the reasons of a rejection kept only as a commitment.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Caller, NodeContext
from broker.core.errors import Forbidden, InvalidState, NotFound, SchemaViolation
from broker.core.roles import SUPERVISORS
from broker.messages.followups import open_follow_ups
from broker.messages.models import (
    ApprovalStatus,
    Message,
    MessageApproval,
    MessageStatus,
    OutboxEntry,
    OutboxPriority,
)
from broker.oversight.service import AuditKind, record_event
from policies.model import Obligation

HELD = frozenset({MessageStatus.PENDING_APPROVAL.value, MessageStatus.REJECTED.value})
"""The statuses of a message that has not left and never will unless approved."""


def approval_obligations(obligations: Iterable[Obligation]) -> list[Obligation]:
    return [o for o in obligations if o.kind == "require_approval"]


def follow_up_obligations(obligations: Iterable[Obligation]) -> list[tuple[str, str]]:
    return [(o.rule_id, o.value) for o in obligations if o.kind == "follow_up"]


async def hold(
    session: AsyncSession,
    *,
    message_id: str,
    participant_id: str,
    drafter: str,
    required: Sequence[Obligation],
    follow_ups: Sequence[tuple[str, str]],
    follow_up_case_id: str | None,
    now: dt.datetime,
) -> None:
    """The approval row of a message just stored as ``pending_approval``. Flushes."""
    await session.execute(
        insert(MessageApproval),
        [
            {
                "message_id": message_id,
                "participant_id": participant_id,
                "drafter_account": drafter,
                "requested_at": now,
                "rules": list(dict.fromkeys(o.rule_id for o in required)),
                "texts": list(dict.fromkeys(o.value for o in required)),
                "follow_ups": [{"rule": r, "what": w} for r, w in follow_ups],
                "follow_up_case_id": follow_up_case_id,
                "status": ApprovalStatus.PENDING.value,
            }
        ],
    )


async def approvals_of(
    session: AsyncSession, message_ids: Iterable[str]
) -> dict[str, MessageApproval]:
    ids = list(message_ids)
    if not ids:
        return {}
    rows = await session.scalars(select(MessageApproval).where(MessageApproval.message_id.in_(ids)))
    return {a.message_id: a for a in rows}


async def pending_approvals(
    session: AsyncSession, *, caller: Caller
) -> list[tuple[MessageApproval, Message]]:
    """The messages of the caller's participant waiting for a supervisor, oldest first.

    Raises Forbidden: the caller is not a supervisor."""
    _check_supervisor(caller)
    stmt = (
        select(MessageApproval, Message)
        .join(Message, Message.id == MessageApproval.message_id)
        .where(
            MessageApproval.participant_id == caller.participant_id,
            MessageApproval.status == ApprovalStatus.PENDING.value,
        )
        .order_by(MessageApproval.requested_at, MessageApproval.message_id)
    )
    return [(a, m) for a, m in (await session.execute(stmt)).all()]


def _check_supervisor(caller: Caller) -> None:
    if not caller.has_any(*SUPERVISORS):
        raise Forbidden("only a supervisor approves or rejects a held message")


async def _pending(
    session: AsyncSession, *, caller: Caller, message_id: str
) -> tuple[MessageApproval, Message]:
    _check_supervisor(caller)
    try:
        uuid.UUID(message_id)
    except ValueError as exc:
        raise NotFound(f"no message {message_id} waiting for approval") from exc
    approval = (
        await session.scalars(
            select(MessageApproval)
            .where(MessageApproval.message_id == message_id)
            .with_for_update()
        )
    ).first()
    if approval is None or approval.participant_id != caller.participant_id:
        raise NotFound(f"no message {message_id} waiting for approval")
    if approval.drafter_account == caller.account_id:
        raise Forbidden(
            "you submitted this message: another supervisor of your participant must approve "
            "or reject it (four eyes; LED art. 38(2))"
        )
    if approval.status != ApprovalStatus.PENDING:
        raise InvalidState(f"message {message_id} was already {approval.status}")
    message = await session.get(Message, message_id, with_for_update=True)
    assert message is not None  # the approval row's foreign key
    return approval, message


def _leaf(message: Message, approval: MessageApproval) -> dict[str, Any]:
    return {
        "sender": message.sender_id,
        "recipient": message.recipient_id,
        "message_type": message.type,
        "envelope_sha256": message.envelope_sha256,
        "approval_rules": list(approval.rules),
    }


async def approve(
    session: AsyncSession, *, node: NodeContext, caller: Caller, message_id: str, now: dt.datetime
) -> Message:
    """Release a held message: it is queued for delivery, its ``message:approved`` leaf
    written and its follow-ups opened. Flushes.

    Raises Forbidden (not a supervisor; the drafter), NotFound (no such held message of the
    caller's participant), InvalidState (already decided; its content erased)."""
    approval, message = await _pending(session, caller=caller, message_id=message_id)
    if message.erased_at is not None:
        raise InvalidState(f"the content of message {message_id} was erased: nothing to send")
    approval.status = ApprovalStatus.APPROVED.value
    approval.decided_by = caller.account_id
    approval.decided_at = now
    message.status = MessageStatus.ACCEPTED.value
    await session.execute(
        insert(OutboxEntry),
        [
            {
                "message_id": message.id,
                "recipient_id": message.recipient_id,
                "created_at": now,
                "priority": OutboxPriority.of(message.urgent).value,
            }
        ],
    )
    await record_event(
        session,
        kind=AuditKind.MESSAGE_APPROVED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=message.sender_id,
        message_id=message.id,
        at=now,
        **_leaf(message, approval),
    )
    await open_follow_ups(
        session,
        node=node,
        actor=caller.actor(),
        participant_id=message.sender_id,
        obligations=[(f["rule"], f["what"]) for f in approval.follow_ups],
        message_id=message.id,
        case_id=approval.follow_up_case_id,
        now=now,
    )
    await session.flush()
    return message


async def reject(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    message_id: str,
    reason: str,
    now: dt.datetime,
) -> Message:
    """Refuse a held message with reasons: it never leaves. Flushes.

    Raises SchemaViolation (no reasons), and the errors of ``approve``."""
    if not reason.strip():
        raise SchemaViolation("a rejection gives its reasons", field="reason")
    approval, message = await _pending(session, caller=caller, message_id=message_id)
    approval.status = ApprovalStatus.REJECTED.value
    approval.decided_by = caller.account_id
    approval.decided_at = now
    approval.reason = reason
    message.status = MessageStatus.REJECTED.value
    await record_event(
        session,
        kind=AuditKind.MESSAGE_REJECTED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=message.sender_id,
        message_id=message.id,
        at=now,
        texts={"reason": reason},
        **_leaf(message, approval),
    )
    await session.flush()
    return message
