from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class MatchQuery(Base):
    """An anonymous matching query: the requesting FIU asked a partner FIU whether it holds
    anything on subjects it sent only as keyed filters (HMAC under a key the two FIUs share).
    The filters travel in the signed, encrypted ``fiu.match`` message; this row holds only
    metadata. Insert-only."""

    __tablename__ = "fiu_match_queries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    counterpart_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    exchange_id: Mapped[str] = mapped_column(String(64))
    filter_count: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
    purpose: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MatchAnswer(Base):
    """The partner's answer: hit or no hit, nothing else. A hit opens a draft FIU request
    for the requesting FIU (``draft_case_id``). Insert-only."""

    __tablename__ = "fiu_match_answers"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    query_id: Mapped[str] = mapped_column(ForeignKey("fiu_match_queries.id"), unique=True)
    result: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
    answered_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    draft_case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"))
