from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class OutboxEntry(Base):
    """A message not yet delivered. Written in the transaction that accepts the message;
    removed in the transaction that records its delivery, so a crash anywhere leaves it to be
    retried. A row that ran out of attempts stays, dead-lettered, until an operator requeues
    it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_dead_lettered_at", "dead_lettered_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
    recipient_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
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
