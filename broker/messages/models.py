from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class MessageStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    RECEIPTED = "receipted"
    DEAD_LETTERED = "dead_lettered"


class Message(Base):
    """An accepted message. Metadata in clear; the countersigned envelope (which carries the
    body) only encrypted, under a per-message key kept wrapped for the node and sealed to the
    sender's and the recipient's X25519 keys."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_sender_created", "sender_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    recipient_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    receipted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[str] = mapped_column(String(36))
    legal_basis: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(200))
    handling_code: Mapped[str | None] = mapped_column(String(2))
    payload_size: Mapped[int] = mapped_column(Integer)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    sender_kid: Mapped[str] = mapped_column(String(64))
    policy_hash: Mapped[str] = mapped_column(String(80))
    policy_rules: Mapped[list[str]] = mapped_column(JSON)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_for_node: Mapped[bytes] = mapped_column(LargeBinary)
    key_for_sender: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_for_recipient: Mapped[bytes | None] = mapped_column(LargeBinary)
    sender_enc_kid: Mapped[str | None] = mapped_column(String(64))
    recipient_enc_kid: Mapped[str | None] = mapped_column(String(64))
    # The recipient's signed receipt envelope (metadata only: no content), JSON text.
    receipt: Mapped[str | None] = mapped_column(String)


class InboxEntry(Base):
    """A message placed in its recipient's inbox. Written only by the delivery relay, which
    holds a lock while it writes, so ``seq`` grows in commit order and a cursor never skips
    a message committed later."""

    __tablename__ = "inbox_entries"
    __table_args__ = (Index("ix_inbox_entries_recipient_seq", "recipient_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recipient_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
