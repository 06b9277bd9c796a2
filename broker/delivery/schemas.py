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
