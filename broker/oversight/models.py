"""Audit tables: leaves, the sequenced log, its subtree hashes, checkpoints and cosignatures.

Every table here except ``audit_unsequenced`` is insert-only: migrations 0001 and 0002 make
the database refuse UPDATE, DELETE and TRUNCATE (triggers enabled ALWAYS on PostgreSQL, abort
triggers on SQLite), and the ``palermo_app`` role holds INSERT and SELECT only on them.
``audit_unsequenced`` is the sequencer's work queue: a trigger on ``audit_events`` fills it in
the event's own transaction, and the sequencer deletes what it has sequenced.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
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


class AuditUnsequenced(Base):
    """An audit event not yet in the log (the sequencer's queue; rows are deleted)."""

    __tablename__ = "audit_unsequenced"

    event_ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class AuditLogEntry(Base):
    """Position ``idx`` of the Merkle log holds the leaf of event ``event_ref``."""

    __tablename__ = "audit_log"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_ref: Mapped[int] = mapped_column(ForeignKey("audit_events.id"), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sequenced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditNode(Base):
    """Hash of the perfect subtree of ``2**level`` leaves starting at leaf ``idx * 2**level``.

    Written once, when its last leaf is sequenced (see `audit.merkle`); level 0 is the leaf
    hash. Roots and proofs read O(log n) of these rows.
    """

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditEntryParty(Base):
    """Participant ``participant_id`` may see log entry ``idx`` (see `entry_parties`)."""

    __tablename__ = "audit_entry_parties"

    participant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class AuditEntryCase(Base):
    """Log entry ``idx`` is about case ``case_id`` (its leaf names the case): the index the
    audit explorer filters a case's entries by. Filled by the sequencer with the entry."""

    __tablename__ = "audit_entry_cases"

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class AuditCheckpoint(Base):
    """A C2SP tlog-checkpoint the node signed after sequencing a batch."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditCosignature(Base):
    """A witness's verified c2sp.org/tlog-cosignature line on one checkpoint."""

    __tablename__ = "audit_cosignatures"
    __table_args__ = (UniqueConstraint("checkpoint_size", "witness_name", "witness_key_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    checkpoint_size: Mapped[int] = mapped_column(ForeignKey("audit_checkpoints.size"), index=True)
    witness_name: Mapped[str] = mapped_column(String(255))
    witness_key_id: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)
    witness_url: Mapped[str] = mapped_column(String(2000))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditText(Base):
    """Free text an audit leaf commits to without holding it: a justification or a review's
    reasons, which may name a person (docs/audit.md, "What a leaf holds"). The leaf carries
    ``<field>_commitment`` = SHA-256(``salt`` || UTF-8 text); the text and the salt live here,
    erasable: they go when the item they are about is erased (its message or case), or at
    ``retention_until`` for text about no single item. Once they are gone the commitment
    reveals nothing (the salt is 16 random bytes). Not append-only, unlike the log."""

    __tablename__ = "audit_texts"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    field: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36), index=True)
    retention_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
