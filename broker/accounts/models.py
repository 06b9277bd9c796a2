from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from broker.core.db import Base, UTCDateTime, utcnow
from broker.core.roles import Role

__all__ = ["Account", "AccountKind", "LoginThrottle", "Role"]


class AccountKind(enum.StrEnum):
    PERSON = "person"
    SYSTEM = "system"


class Account(Base):
    """A person (password grant) or an agency system (client_credentials) of a participant."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # user name for a person, client id for a system; unique across the node
    login: Mapped[str] = mapped_column(String(120), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Access tokens issued before this instant are refused (set on disable and on a password
    # change); web sessions opened before it are ended.
    tokens_valid_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A person holding a temporary password the node made (an admin's reset, or an account
    # created without a password): until they choose their own, they may do nothing else.
    password_change_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )


class LoginThrottle(Base):
    """Recent failed logins of one login or one client address (``key`` is ``login:`` or
    ``address:`` and a keyed digest: neither appears in clear), and the lockout they led to."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
