"""A participant's export of its own messages, sealed to its own keys (docs/retention.md,
"Per-party keys").

At acceptance the content key of every message is sealed (libsodium sealed box, X25519) to
the sender's and to the recipient's current encryption key, beside the node's own wrapped
copy. An export hands a participant, for each message it sent or received and that is not
erased, the ciphertext and the copy sealed to it: it opens them with its own private key
(``palermo client export --encryption-key``), without the node's master key, for example to
keep its own record when it leaves the network. The node never opens them here.

What it discloses is content (encrypted to the caller), so an export is a consultation: it
needs a justification and writes exactly one ``content:consulted`` leaf naming how many
messages it holds and the SHA-256 of their ids (LED art. 25).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Caller, NodeContext
from broker.core.text import justification as justified
from broker.messages.approvals import HELD
from broker.messages.models import Message, MessageStatus
from broker.oversight.service import record_consultation


@dataclass(frozen=True, slots=True)
class SealedItem:
    message: Message
    role: str
    enc_kid: str | None
    sealed_key: bytes | None


_UNDELIVERED = sorted({MessageStatus.ACCEPTED.value, *HELD})


async def export_sealed(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    justification: str | None,
    min_justification: int,
    after: str | None,
    limit: int,
) -> tuple[list[SealedItem], bool]:
    """Up to ``limit`` of the messages the caller's participant sent or received (delivered
    to it), in id order after ``after``, not erased, each with the content key sealed to it
    (None where the participant had no encryption key at acceptance); writes one
    ``content:consulted`` leaf. Returns the items and whether more follow.

    Raises:
        JustificationRequired: the justification is missing or too short (nothing written).
    """
    text = justified(justification, minimum=min_justification, what="export")
    me = caller.participant_id
    stmt = (
        select(Message)
        .where(
            or_(
                Message.sender_id == me,
                # Delivered to me: not waiting for delivery, and not held for the sender's
                # supervisor or rejected by one (it never reached me).
                and_(Message.recipient_id == me, Message.status.not_in(_UNDELIVERED)),
            ),
            Message.erased_at.is_(None),
            Message.ciphertext.is_not(None),
        )
        .order_by(Message.id)
        .limit(limit + 1)
    )
    if after:
        stmt = stmt.where(Message.id > after)
    items = []
    rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    for m in rows[:limit]:
        mine_as_sender = m.sender_id == me
        items.append(
            SealedItem(
                message=m,
                role="sender" if mine_as_sender else "recipient",
                enc_kid=m.sender_enc_kid if mine_as_sender else m.recipient_enc_kid,
                sealed_key=m.key_for_sender if mine_as_sender else m.key_for_recipient,
            )
        )
    ids = "\n".join(i.message.id for i in items).encode()
    await record_consultation(
        session,
        node=node.node_id,
        actor=caller.actor(),
        justification=text,
        object="export",
        count=len(items),
        first_id=items[0].message.id if items else None,
        last_id=items[-1].message.id if items else None,
        ids_sha256=hashlib.sha256(ids).hexdigest(),
    )
    return items, more
