from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class Case(Base):
    """A case: one workflow instance between a requesting and a requested participant.

    The row is the projection of the case's events (``broker.cases.fold``), rewritten in the
    transaction that appends each event; the history itself is ``case_events``. The request's
    content is stored only encrypted (``request_ciphertext`` under a per-case key kept wrapped
    by the node's master key); the row holds metadata: the names of the filled fields, the
    declared legal basis, purpose, language and channel, flags, and the deadline.
    """

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(32), index=True)
    case_type: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    requesting_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    requested_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    opened_by: Mapped[str] = mapped_column(String(36))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    head_message_id: Mapped[str | None] = mapped_column(String(36))
    # When the case first reached the other side (transmit, submit, a thread's opening).
    shared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    projection: Mapped[dict[str, Any]] = mapped_column(JSON)
    legal_basis: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(35))
    channel: Mapped[str | None] = mapped_column(String(32))
    transfer_basis: Mapped[str | None] = mapped_column(String(32))
    urgent: Mapped[bool] = mapped_column(Boolean)
    confidential: Mapped[bool] = mapped_column(Boolean)
    extraordinary_costs: Mapped[bool] = mapped_column(Boolean)
    initiated_by: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deadline_reason: Mapped[str | None] = mapped_column(String(500))
    # An intel.request's information: "direct" or "indirect"ly accessible to the requested
    # side (Directive (EU) 2023/977 art. 5(1)); None for other workflows.
    information_access: Mapped[str | None] = mapped_column(String(16))
    fields: Mapped[list[str]] = mapped_column(JSON)
    assistance_types: Mapped[list[str]] = mapped_column(JSON)
    data_subject_categories: Mapped[list[str]] = mapped_column(JSON)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    next_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    next_check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    origin: Mapped[str | None] = mapped_column(String(64))
    # When the content is due for erasure (P17): set when the case reaches a retained final
    # state (closure, refusal, withdrawal); its messages and evidence follow it.
    retention_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CaseEvent(Base):
    """One accepted event of a case, in order (``seq``). Insert-only: the migration makes
    the database refuse UPDATE and DELETE. An event a participant fired carries the id and
    digest of the signed envelope that carried it; a notice of the node's own timers carries
    the node's signature over the row instead. ``details`` is metadata (codes, dates, field
    names, evidence ids, conditions accepted as restrictions), never content."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(16))
    actor_participant: Mapped[str | None] = mapped_column(String(64))
    actor_account: Mapped[str | None] = mapped_column(String(36))
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), unique=True)
    envelope_sha256: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_pack: Mapped[str | None] = mapped_column(String(80))
    policy_rules: Mapped[list[str]] = mapped_column(JSON)
    node_signature: Mapped[str | None] = mapped_column(String(128))


class EvidenceFile(Base):
    """An evidence file uploaded to a case: encrypted at rest in chunks on disk under a
    per-file key kept wrapped by the master key; hashed (SHA-256) while it streamed in. The
    event that delivers it (``deliver_partial``, ``complete``, ``respond``) lists its id and
    signs its name, size and digest."""

    __tablename__ = "evidence_files"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    side: Mapped[str] = mapped_column(String(16))
    uploaded_by_participant: Mapped[str] = mapped_column(String(64))
    uploaded_by_account: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunk_size: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    key_for_node: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The file key sealed to each party's encryption key current at upload (revision 0013):
    # a party opens its copy with its own private key (GET .../evidence/{id}/sealed).
    key_for_requesting: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_for_requested: Mapped[bytes | None] = mapped_column(LargeBinary)
    requesting_enc_kid: Mapped[str | None] = mapped_column(String(64))
    requested_enc_kid: Mapped[str | None] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
