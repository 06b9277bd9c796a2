"""The tables of a message's life: the message, its terms of onward use, its outbox row,
its delivery attempts and its inbox entry.

Invariants:
- ``message_terms`` holds a row only for a message whose terms differ from the defaults the
  ``messages`` row already implies (provider = sender, permitted recipients = the recipient,
  permitted purposes = the declared purpose, the message's handling code, no restrictions).
  Both the writer and the reader derive the defaults with ``broker.messages.policy.
  default_terms``, so a missing row never means "no terms".
- A message's ``outbox`` row is written in the transaction that accepts it, and removed in
  the one that records its delivery (``broker.delivery`` owns that part of the life).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class MessageStatus(enum.StrEnum):
    # Held until a supervisor approves (a ``require_approval`` obligation): no outbox row,
    # invisible to the recipient; ``rejected`` when a supervisor refused it: it never leaves.
    PENDING_APPROVAL = "pending_approval"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    RECEIPTED = "receipted"
    DEAD_LETTERED = "dead_lettered"


class Message(Base):
    """An accepted message. Metadata in clear; the countersigned envelope (which carries the
    body) only encrypted, under a per-message key kept wrapped for the node and sealed to the
    sender's and the recipient's X25519 keys."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_sender_created", "sender_id", "created_at"),
        # The sent list walks (sender, id) newest first and stops at its limit; the filter
        # form's types come from the two (party, type) indexes alone (migration 0011).
        Index("ix_messages_sender_id", "sender_id", "id"),
        Index("ix_messages_sender_type", "sender_id", "type"),
        Index("ix_messages_recipient_type", "recipient_id", "type"),
        # The home page's "waiting for your acknowledgement", longest waiting first.
        Index("ix_messages_recipient_waiting", "recipient_id", "status", "delivered_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    recipient_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
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
    # The payload's ``urgent`` flag: urgent messages are relayed first and the inbox can be
    # narrowed to them (migration 0016).
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    payload_size: Mapped[int] = mapped_column(Integer)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    sender_kid: Mapped[str] = mapped_column(String(64))
    policy_hash: Mapped[str] = mapped_column(String(80))
    policy_rules: Mapped[list[str]] = mapped_column(JSON)
    # The ciphertext and every wrapped copy of its key are destroyed (NULL) at erasure.
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_for_node: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_for_sender: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_for_recipient: Mapped[bytes | None] = mapped_column(LargeBinary)
    sender_enc_kid: Mapped[str | None] = mapped_column(String(64))
    recipient_enc_kid: Mapped[str | None] = mapped_column(String(64))
    # The recipient's signed receipt envelope (metadata only: no content), JSON text.
    receipt: Mapped[str | None] = mapped_column(String)
    # When the content is due for erasure (P17): set at acceptance for a message outside a
    # case; a case's messages follow the case (NULL until the case ends, then its deadline).
    retention_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


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


class MessageTerms(Base):
    """What onward use of a message's material needs, when it differs from the defaults."""

    __tablename__ = "message_terms"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    # The first message of the material: consents are given for it, whoever forwards it.
    root_message_id: Mapped[str] = mapped_column(String(36), index=True)
    forwarded_from: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    original_purpose: Mapped[str | None] = mapped_column(String(200))
    permitted_recipients: Mapped[list[str]] = mapped_column(JSON)
    permitted_purposes: Mapped[list[str]] = mapped_column(JSON)
    handling_code: Mapped[str | None] = mapped_column(String(2))
    handling_restriction: Mapped[str | None] = mapped_column(Text)
    restrictions: Mapped[list[str]] = mapped_column(JSON)
    # What the decision's ``handling_text`` obligations say is shown to every reader (P12).
    handling_texts: Mapped[list[str] | None] = mapped_column(JSON, default=None)


class OutboxPriority(enum.IntEnum):
    """The order in which the relay hands outbox rows out, lowest first."""

    URGENT = 0
    NORMAL = 1

    @classmethod
    def of(cls, urgent: bool) -> OutboxPriority:
        return cls.URGENT if urgent else cls.NORMAL


class OutboxEntry(Base):
    """A message not yet delivered. Written in the transaction that accepts the message;
    removed in the transaction that records its delivery, so a crash anywhere leaves it to be
    retried. A row that ran out of attempts stays, dead-lettered, until an operator requeues
    it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_dead_lettered_at", "dead_lettered_at"),
        # The relay's order: by priority (urgent first), then acceptance order (migration 0016).
        Index("ix_outbox_priority_id", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
    recipient_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The relay hands rows out by priority, lowest first: ``URGENT`` (0) for an urgent
    # message, ``NORMAL`` (1) for the others.
    priority: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    # Failed attempts so far; the next one is number attempts + 1.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Not handed out before this time (backoff after a failed attempt); NULL: due now.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    # Claimed by the relay until this time; a claim whose task was lost expires.
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    dead_lettered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class DeliveryOutcome:
    DELIVERED = "delivered"
    FAILED = "failed"  # will be retried
    REJECTED = "rejected"  # permanent: the receiver refused it, or the configuration is bad


class DeliveryAttempt(Base):
    """One call of a recipient's adapter for one message, whatever came of it."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    adapter: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class MessageApproval(Base):
    """A message held for a supervisor's approval because its decision carried a
    ``require_approval`` obligation (P16.derogation: LED art. 38(2)). The message has no
    outbox row until a supervisor of ``participant_id`` other than ``drafter_account``
    approves; a rejection keeps it from ever leaving. ``follow_ups`` are the decision's
    ``follow_up`` obligations, opened only when the message is released."""

    __tablename__ = "message_approvals"
    __table_args__ = (Index("ix_message_approvals_participant_status", "participant_id", "status"),)

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    drafter_account: Mapped[str] = mapped_column(String(36))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The rule ids and texts of the require_approval obligations: what the approver confirms.
    rules: Mapped[list[str]] = mapped_column(JSON)
    texts: Mapped[list[str]] = mapped_column(JSON)
    follow_ups: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    follow_up_case_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(36))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class FollowUpStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class FollowUp(Base):
    """A tracked item a ``follow_up`` obligation opened (P5.late: inform the requested State
    of a late exculpatory disclosure, UNTOC art. 18(19); P20.national: domestic prosecution,
    art. 16(10)): who must do what, by when, and whether it is done. The clocks remind once
    when it falls due (``reminded_at``)."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_participant_status", "participant_id", "status"),
        Index("ix_follow_ups_status_due", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    what: Mapped[str] = mapped_column(String(500))
    rule_id: Mapped[str] = mapped_column(String(80))
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    case_id: Mapped[str | None] = mapped_column(String(36))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8))
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(36))
