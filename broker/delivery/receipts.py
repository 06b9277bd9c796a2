"""Receipts returned by a push adapter (a webhook's 2xx answer): verified against the
recipient's registered keys before the node records them, as ``POST .../receipt`` would.

A receipt is a ``receipt`` envelope signed by the recipient with a signing key of its own that
is valid now, whose ``in_reply_to`` is the message and whose ``body.envelope_sha256`` is the
message's digest. Anything else is refused, and the delivery counts as failed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.db import utcnow
from broker.envelopes import dsse
from broker.messages.models import Message

# One implementation of the receipt checks: the ones the receipt endpoint runs.
from broker.messages.receipts import verify_receipt as verified


async def verify_receipt(session: AsyncSession, *, message: Message, raw: bytes) -> tuple[str, str]:
    """The receipt as stored (JSON text) and its digest. Raises the envelope errors of
    ``submit`` (BadSignature, UnknownKey, RevokedKey, ExpiredKey, KeyNotSenders, ...)."""
    envelope = await verified(
        session, message=message, envelope=dsse.parse_envelope_json(raw), now=utcnow()
    )
    return envelope.to_json().decode(), envelope.digest


__all__ = [
    "verify_receipt",
]
