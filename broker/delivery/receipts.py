"""Receipts returned by a push adapter (a webhook's 2xx answer): verified against the
recipient's registered keys before the node records them, as ``POST .../receipt`` would.

A receipt is a ``receipt`` envelope signed by the recipient with a signing key of its own that
is valid now, whose ``in_reply_to`` is the message and whose ``body.envelope_sha256`` is the
message's digest. Anything else is refused, and the delivery counts as failed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.db import utcnow
from broker.core.errors import SchemaViolation
from broker.envelopes import dsse
from broker.messages.models import Message

# One implementation of the receipt checks: the ones the receipt endpoint runs.
from broker.messages.service import _check_key, _check_receipt, _signing_key, parse_payload


async def verify_receipt(session: AsyncSession, *, message: Message, raw: bytes) -> tuple[str, str]:
    """The receipt as stored (JSON text) and its digest. Raises the envelope errors of
    ``submit`` (BadSignature, UnknownKey, RevokedKey, ExpiredKey, KeyNotSenders, ...)."""
    envelope = dsse.parse_envelope_json(raw)
    if len(envelope.signatures) != 1:
        raise SchemaViolation("a receipt carries one signature", field="signatures")
    kid = envelope.signatures[0].keyid
    key_row = await _signing_key(session, kid)
    dsse.verify_signature(envelope, 0, bytes(key_row.public_key))
    payload = parse_payload(envelope.payload)
    _check_key(key_row, sender=message.recipient_id, now=utcnow(), kid=kid)
    _check_receipt(payload, message)
    return envelope.to_json().decode(), envelope.digest
