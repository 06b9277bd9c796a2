"""Receipts: the recipient's signed acknowledgement of a delivered message.

A receipt is a ``receipt`` envelope signed by the recipient with a signing key of its own
that is valid now, whose ``in_reply_to`` is the message and whose ``body.envelope_sha256`` is
the message's digest (``verify_receipt``: the one implementation of these checks, which the
receipt endpoint and the push adapters' answers both run). Recording one is idempotent, also
under concurrent callers: the first receipt stored is the one receipt, with one
``message:receipted`` leaf, and every caller gets it back.
"""

from __future__ import annotations

import datetime as dt

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import crypto
from broker.core.context import Caller, NodeContext
from broker.core.db import utcnow
from broker.core.errors import (
    BadSignature,
    Forbidden,
    InvalidState,
    MalformedJSON,
    SchemaViolation,
)
from broker.core.ids import uuid7
from broker.envelopes import dsse
from broker.envelopes.schemas import MessagePayload
from broker.messages.keys import check_signing_key, signing_key
from broker.messages.models import Message, MessageStatus
from broker.messages.reading import get_message_for
from broker.messages.signing import parse_payload
from broker.oversight.service import AuditKind, record_event
from broker.participants.models import KeyPurpose
from broker.participants.service import current_key, keys_of, open_custodial_key

RECEIPT_TYPE = "receipt"


async def record_receipt(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    message_id: str,
    body: bytes,
) -> Message:
    """Record the recipient's signed receipt: a ``receipt`` envelope by the recipient, with
    ``in_reply_to`` the message and ``body.envelope_sha256`` its digest; or, with an empty
    body, one the node signs with the recipient's custodial key. Idempotent.

    Raises NotFound, Forbidden (not the recipient), InvalidState (not yet delivered),
    and the envelope errors of ``submit``."""
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if message.recipient_id != caller.participant_id:
        raise Forbidden("only the recipient receipts a message")
    if message.receipt is not None:
        return message
    if message.status == MessageStatus.ACCEPTED:
        raise InvalidState("the message is not yet delivered to your inbox")
    now = utcnow()
    stripped = body.strip()
    if stripped in (b"", b"{}"):
        key = current_key(
            await keys_of(session, caller.participant_id), KeyPurpose.SIGNING, custodial=True
        )
        if key is None:
            raise Forbidden(f"{caller.participant_id} has no custodial key: sign the receipt")
        payload = receipt_payload(
            message_id=message.id,
            sender=caller.participant_id,
            recipient=message.sender_id,
            envelope_sha256=message.envelope_sha256,
            created_at=now,
        )
        envelope = dsse.sign_envelope(payload, crypto.Signer(open_custodial_key(node, key)))
    else:
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise MalformedJSON(f"receipt is not valid JSON: {exc}") from exc
        envelope = await verify_receipt(
            session, message=message, envelope=dsse.parse_envelope(data), now=now
        )
    # Only the first receipt is stored: concurrent callers race on this conditional update
    # (PostgreSQL's row lock makes the losers re-read ``receipt IS NULL`` as false), and a
    # loser returns the winner's receipt without writing a leaf.
    stored = await session.execute(
        update(Message)
        .where(Message.id == message.id, Message.receipt.is_(None))
        .values(
            receipt=envelope.to_json().decode(),
            receipted_at=now,
            status=MessageStatus.RECEIPTED.value,
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(message)
    if not getattr(stored, "rowcount", 0):
        return message
    await record_event(
        session,
        kind=AuditKind.MESSAGE_RECEIPTED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        message_id=message.id,
        receipt_sha256=envelope.digest,
        envelope_sha256=message.envelope_sha256,
    )
    return message


async def verify_receipt(
    session: AsyncSession, *, message: Message, envelope: dsse.UnsafeEnvelope, now: dt.datetime
) -> dsse.VerifiedEnvelope:
    """``envelope``, once it is the recipient's receipt of ``message``: one signature, which
    verifies under a signing key of the recipient's valid ``now``, over a ``receipt`` payload
    that names the message and its digest. Raises SchemaViolation, UnknownKey, BadSignature,
    RevokedKey, ExpiredKey, KeyNotSenders (the envelope errors of ``submit``)."""
    if len(envelope.signatures) != 1:
        raise SchemaViolation("a receipt carries one signature", field="signatures")
    kid = envelope.signatures[0].keyid
    key_row = await signing_key(session, kid)
    verified = dsse.verify_signature(envelope, 0, bytes(key_row.public_key))
    parsed = parse_payload(envelope.payload)
    check_signing_key(key_row, sender=message.recipient_id, now=now, kid=kid)
    _check_receipt(parsed, message)
    return verified


def _check_receipt(payload: MessagePayload, message: Message) -> None:
    problems = []
    if payload.type != RECEIPT_TYPE:
        problems.append(("payload.type", f"must be {RECEIPT_TYPE!r}"))
    if payload.sender != message.recipient_id:
        problems.append(("payload.sender", "must be the message's recipient"))
    if payload.recipient != message.sender_id:
        problems.append(("payload.recipient", "must be the message's sender"))
    if str(payload.in_reply_to) != message.id:
        problems.append(("payload.in_reply_to", "must be the message id"))
    if payload.body.get("envelope_sha256") != message.envelope_sha256:
        problems.append(("payload.body.envelope_sha256", "must be the message's envelope digest"))
    if problems:
        field, why = problems[0]
        raise BadSignature(f"the receipt does not match the message: {field} {why}", field=field)


def receipt_payload(
    *, message_id: str, sender: str, recipient: str, envelope_sha256: str, created_at: dt.datetime
) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid7()),
            "type": RECEIPT_TYPE,
            "sender": sender,
            "recipient": recipient,
            "in_reply_to": message_id,
            "created_at": created_at.isoformat(),
            "body": {"envelope_sha256": envelope_sha256},
        }
    )


__all__ = ["RECEIPT_TYPE", "receipt_payload", "record_receipt", "verify_receipt"]
