from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from broker.envelopes.schemas import Declared, ParticipantId
from broker.envelopes.seal import EnvelopeSeal

Filter = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class MatchCreate(BaseModel):
    """Ask a partner FIU whether it holds anything on subjects sent only as keyed filters
    (hex HMAC-SHA-256 under a key the two FIUs share for this exchange). ``sealed_key`` is
    that key sealed to the partner's X25519 key, if you send it this way: the broker
    carries it and cannot open it (with a key the partner holds itself)."""

    model_config = ConfigDict(extra="forbid")

    counterpart: ParticipantId
    exchange_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    filters: list[Filter] = Field(min_length=1)
    purpose: Declared
    legal_basis: Declared
    sealed_key: str | None = Field(default=None, max_length=512, description="base64")


class MatchAnswerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal["hit", "no_hit"]


class MatchRead(BaseModel):
    id: str
    requester: str
    counterpart: str
    exchange_id: str
    filter_count: int
    purpose: str
    legal_basis: str
    created_at: dt.datetime
    query_message_id: str
    result: str | None
    answered_at: dt.datetime | None
    answer_message_id: str | None
    draft_case_id: str | None = Field(
        default=None, description="the draft FIU request a hit opened (requester only)"
    )


class MatchPage(BaseModel):
    items: list[MatchRead]


class MatchAnswered(BaseModel):
    match: MatchRead
    envelope: EnvelopeSeal = Field(
        description="the answer's envelope as accepted: type, payload digest and signatures"
    )
