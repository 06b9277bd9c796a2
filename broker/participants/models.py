from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime, utcnow


class ParticipantKind(enum.StrEnum):
    CENTRAL_AUTHORITY = "central_authority"
    FIU = "fiu"
    POLICE = "police"
    PROSECUTOR = "prosecutor"
    CUSTOMS = "customs"
    JUDICIAL = "judicial"
    OVERSIGHT = "oversight"


class ParticipantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class KeyPurpose(enum.StrEnum):
    SIGNING = "signing"
    ENCRYPTION = "encryption"


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    display_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ParticipantStatus.ACTIVE)
    adapter: Mapped[str] = mapped_column(String(32), default="inbox")
    adapter_config: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ParticipantKey(Base):
    __tablename__ = "participant_keys"
    __table_args__ = (Index("ix_participant_keys_owner", "participant_id", "purpose"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Custodial keys only: the private key under the node master key (SecretBox).
    private_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    revocation_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def custodial(self) -> bool:
        return self.private_key_sealed is not None

    def valid_at(self, when: dt.datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= when:
            return False
        if when < self.not_before:
            return False
        return self.not_after is None or when < self.not_after
