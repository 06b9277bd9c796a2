from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class AuditEvent(Base):
    """One audit leaf, written in the same transaction as the event it records.

    Insert-only: the migration makes the database refuse UPDATE, DELETE and TRUNCATE. The
    leaf is canonical JSON of metadata and digests, never content or a person in clear.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    participant_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
