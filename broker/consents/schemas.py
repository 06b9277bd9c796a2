from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from broker.core.text import Text
from broker.envelopes.schemas import Declared, ParticipantId
from policies.vocabulary import GROUNDS

TransferBasis = Literal["adequacy", "appropriate_safeguards", "derogation"]


class ConsentCreate(BaseModel):
    """Ask the provider of received material to let ``recipient`` use it for ``purpose``."""

    model_config = ConfigDict(extra="forbid")

    recipient: ParticipantId
    purpose: Declared
    reasons: Text | None = Field(
        default=None, max_length=4000, description="why the onward use is needed"
    )
    legal_basis: Declared | None = Field(
        default=None, description="default: the legal basis of the material"
    )
    transfer_basis: TransferBasis | None = None


class ConsentAnswer(BaseModel):
    """The provider's answer. A refusal states its reasons (Egmont) and may name grounds."""

    model_config = ConfigDict(extra="forbid")

    reasons: Text | None = Field(default=None, max_length=4000)
    grounds: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=len(GROUNDS)
    )
    legal_basis: Declared | None = Field(
        default=None, description="default: the legal basis of the request"
    )
    conditions: list[Annotated[Text, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list,
        max_length=20,
        description="a grant's conditions: they travel with every forward the consent "
        "permits, as restrictions (P9, UNTOC art. 18(26))",
    )
    valid_until: AwareDatetime | None = Field(
        default=None, description="a grant's end: after it the consent no longer counts"
    )
    transfer_basis: TransferBasis | None = None

    @field_validator("grounds")
    @classmethod
    def _known_grounds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - GROUNDS)
        if unknown:
            raise ValueError(f"unknown ground {unknown[0]!r} (known: {', '.join(sorted(GROUNDS))})")
        return value


class ConsentRead(BaseModel):
    id: str
    message_id: str = Field(description="the message whose material the consent is about")
    root_message_id: str = Field(description="the provider's message the material came from")
    provider: str
    requester: str
    recipient: str
    purpose: str
    status: Literal["requested", "granted", "refused"]
    reasons: str | None
    grounds: list[str]
    conditions: list[str] = Field(description="restrictions every forward it permits carries")
    valid_until: dt.datetime | None
    request_message_id: str
    answer_message_id: str | None
    requested_at: dt.datetime
    answered_at: dt.datetime | None


class ConsentPage(BaseModel):
    items: list[ConsentRead]
