from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from broker.core.text import Name, Text
from broker.envelopes.schemas import PARTICIPANT_ID_PATTERN
from broker.participants.models import ParticipantKind, ParticipantStatus


class ParticipantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=PARTICIPANT_ID_PATTERN, max_length=64, examples=["it.central-authority"]
    )
    kind: ParticipantKind
    display_name: Name = Field(min_length=1, max_length=200)
    adapter: str = Field(default="inbox", max_length=32)


class ParticipantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Name | None = Field(default=None, min_length=1, max_length=200)
    status: ParticipantStatus | None = None


class KeyRead(BaseModel):
    kid: str
    purpose: str
    algorithm: str
    public_key: str = Field(description="base64 of the 32-byte public key")
    custodial: bool
    not_before: dt.datetime
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    revocation_reason: str | None


class ParticipantRead(BaseModel):
    id: str
    kind: str
    jurisdiction: str
    display_name: str
    status: str
    adapter: str
    keys: list[KeyRead]


class ParticipantList(BaseModel):
    items: list[ParticipantRead]


class KeyCreate(BaseModel):
    """Register a public key the participant holds, or (``generate``) have the node make and
    hold a custodial key pair."""

    model_config = ConfigDict(extra="forbid")

    purpose: Literal["signing", "encryption"]
    public_key: str | None = Field(default=None, description="base64; omit with generate=true")
    generate: bool = False
    not_before: AwareDatetime | None = None
    not_after: AwareDatetime | None = None


class KeyRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=3, max_length=500)


class KeyRotate(BaseModel):
    """Add a new key of ``purpose`` (the given public key, or a custodial one generated) and
    end the current ones of that purpose after ``grace_seconds``."""

    model_config = ConfigDict(extra="forbid")

    purpose: Literal["signing", "encryption"]
    public_key: str | None = Field(default=None, description="base64; omit to generate")
    grace_seconds: int = Field(default=7 * 86_400, ge=0, le=366 * 86_400)
