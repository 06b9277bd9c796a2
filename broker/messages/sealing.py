"""Sealed copies for parties that had no encryption key when a message was accepted.

A message's content key is sealed to its sender's and its recipient's current X25519 keys at
acceptance (``key_for_sender``, ``key_for_recipient``), so each party opens its own copy with
its own private key (``GET /v1/messages/export``, docs/retention.md "Your own copy"). A party
that registers its first encryption key later, or a message accepted before the copies were
written, has none: this pass seals the key again from the node's copy, to the party's key
current now. It changes no content and no decision; erased messages are left alone.

Invariants: a copy is only ever sealed to the sender or the recipient of the message; an
existing copy is never replaced; services flush, the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import crypto
from broker.core.context import NodeContext
from broker.messages.keys import encryption_keys
from broker.messages.models import Message


@dataclass(frozen=True)
class SealPass:
    """One batch of ``seal_missing_copies``: how many copies it sealed, and the last message
    id it looked at (where the next batch starts), None when no message was left."""

    sealed: int
    last_id: str | None


async def seal_missing_copies(
    session: AsyncSession, *, node: NodeContext, after: str = "", limit: int = 500
) -> SealPass:
    """Seal the content key of up to ``limit`` messages with an id above ``after``, not
    erased, that lack a party's copy, to each such party that has an encryption key now.
    Flushes."""
    rows = (
        await session.scalars(
            select(Message)
            .where(
                Message.id > after,
                Message.erased_at.is_(None),
                Message.key_for_node.is_not(None),
                or_(Message.key_for_sender.is_(None), Message.key_for_recipient.is_(None)),
            )
            .order_by(Message.id)
            .limit(limit)
        )
    ).all()
    known: dict[tuple[str, str], dict[str, tuple[str, bytes]]] = {}
    sealed = 0
    for m in rows:
        pair = (m.sender_id, m.recipient_id)
        if pair not in known:
            known[pair] = await encryption_keys(session, *pair)
        keys = known[pair]
        to_sender = m.key_for_sender is None and m.sender_id in keys
        to_recipient = m.key_for_recipient is None and m.recipient_id in keys
        if not (to_sender or to_recipient):
            continue
        assert m.key_for_node is not None
        content_key = crypto.secretbox_decrypt(node.master_key, m.key_for_node)
        if to_sender:
            m.sender_enc_kid, public = keys[m.sender_id]
            m.key_for_sender = crypto.seal(public, content_key)
        if to_recipient:
            m.recipient_enc_kid, public = keys[m.recipient_id]
            m.key_for_recipient = crypto.seal(public, content_key)
        sealed += to_sender + to_recipient
    await session.flush()
    return SealPass(sealed, rows[-1].id if rows else None)


__all__ = ["SealPass", "seal_missing_copies"]
