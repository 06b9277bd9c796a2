from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime, utcnow


class FederationPeer(Base):
    """A peer node: what an operator types once (its node id, URL and node key), and the
    state of its directory here (the last serial applied, so an older one cannot replay)."""

    __tablename__ = "federation_peers"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    node_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    node_key_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The ISO 3166 alpha-2 codes the peer may register participants of (``de.*`` for DE).
    jurisdictions: Mapped[list[str]] = mapped_column(JSON, default=list)
    directory_serial: Mapped[int | None] = mapped_column(BigInteger, default=None)
    directory_issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    directory_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
