"""Consents for onward use of received material (the terms each accepted message carries
are ``broker.messages.models.MessageTerms``, written with the message).

Invariants:
- A consent names exactly one provider, one onward recipient and one purpose, for the
  material of one original (``root_message_id``): granting it widens exactly that.
- A granted consent may carry conditions (they travel with every forward it permits, as
  restrictions: P9, UNTOC art. 18(26)) and a ``valid_until`` after which it no longer counts.
- A consent's request and its answer are signed ``fiu.consent`` messages
  (``request_message_id``, ``answer_message_id``); a consent moves only from ``requested``
  to ``granted`` or ``refused``, once.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class ConsentStatus(enum.StrEnum):
    REQUESTED = "requested"
    GRANTED = "granted"
    REFUSED = "refused"


class Consent(Base):
    """A provider's answer (or pending answer) to one request for onward use."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_root_status", "root_message_id", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    root_message_id: Mapped[str] = mapped_column(String(36))
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    recipient_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str | None] = mapped_column(Text)
    grounds: Mapped[list[str]] = mapped_column(JSON)
    request_message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    answer_message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(36))
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(36))
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The retention of the material it is about (P17): that of its request message.
    retention_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
