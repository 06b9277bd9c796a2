from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class OutboxEntry(Base):
    """A message waiting for the relay. Written in the transaction that accepts the message;
    removed in the transaction that delivers it, so a crash anywhere leaves it to be retried."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
    recipient_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
