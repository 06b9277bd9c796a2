from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from broker.accounts.models import AccountKind
from broker.core.roles import Role
from broker.core.text import Name


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    participant_id: str
    roles: list[str]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AccountKind
    login: str = Field(min_length=3, max_length=120, pattern=r"^[A-Za-z0-9._@-]+$")
    display_name: Name = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    password: str | None = Field(
        default=None, description="for a person; systems get a generated client secret"
    )


class AccountRoles(BaseModel):
    """The roles an account is to hold from now on (they replace the ones it holds)."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] = Field(min_length=1, max_length=len(Role))


class AccountRead(BaseModel):
    id: str
    participant_id: str
    kind: str
    login: str
    display_name: str
    roles: list[str]
    active: bool
    created_at: dt.datetime


class AccountCreated(AccountRead):
    client_secret: str | None = Field(default=None, description="shown once, for a system account")


class AccountList(BaseModel):
    items: list[AccountRead]


class WhoAmI(BaseModel):
    account_id: str
    participant_id: str
    roles: list[str]
    kind: str


class PasswordChange(BaseModel):
    """A person's new password, with the current one (checked, and throttled as a login)."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(
        min_length=1, max_length=1000, description="at least 12 characters, as at creation"
    )


class SecretReset(AccountRead):
    secret: str = Field(
        description="the new password (a person) or client secret (a system): shown once"
    )
