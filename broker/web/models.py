"""What the web app keeps between requests: signed-in sessions (failed sign-ins are
throttled by the accounts domain, ``broker/accounts/throttling.py``).

A session row is keyed by the SHA-256 of the cookie's token, so the table alone does not let
anyone act as a signed-in person.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
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
