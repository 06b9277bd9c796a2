from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DeadLetterRead(BaseModel):
    message_id: str
    recipient: str
    sender: str
    type: str
    adapter: str
    attempts: int
    last_error: str | None
    accepted_at: dt.datetime
    dead_lettered_at: dt.datetime


class DeadLetterList(BaseModel):
    items: list[DeadLetterRead]


class RequeueRead(BaseModel):
    requeued: list[str]


class AdapterUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(min_length=1, max_length=32, examples=["webhook"])
    config: dict[str, Any] = Field(
        default_factory=dict, examples=[{"url": "https://agency.example/palermo"}]
    )


class AdapterRead(BaseModel):
    participant_id: str
    adapter: str
    config: dict[str, Any]


class FederationAccepted(BaseModel):
    id: str
    status: str
    envelope: dict[str, Any] = Field(description="the envelope with this node's countersignature")


class FederationBatchResult(BaseModel):
    index: int = Field(description="the envelope's position in the request")
    status: int = Field(
        description="what POST /v1/federation/envelopes would have answered for it: 202 "
        "accepted, 200 seen before (its first answer), 4xx refused"
    )
    accepted: FederationAccepted | None = Field(
        default=None, description="when 200 or 202: the message with this node's countersignature"
    )
    problem: dict[str, Any] | None = Field(
        default=None, description="when refused: the RFC 9457 problem the single endpoint gives"
    )


class FederationBatchRead(BaseModel):
    results: list[FederationBatchResult] = Field(description="one per envelope, in order")
