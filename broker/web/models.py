"""What the web app keeps between requests: signed-in sessions and recent failed sign-ins.

A session row is keyed by the SHA-256 of the cookie's token, so the table alone does not let
anyone act as a signed-in person. Failed sign-ins hold keyed digests of the login and the
client address, never either in clear.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime


class WebSession(Base):
    """A person signed in to the web app, until sign-out, idle timeout or its lifetime."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class SignInFailure(Base):
    """One failed sign-in, counted against its login and its client address."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    login_digest: Mapped[str] = mapped_column(String(64), index=True)
    address_digest: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
