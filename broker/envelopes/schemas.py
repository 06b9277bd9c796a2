"""The payload of a Palermo message (DESIGN.md, "Envelope"): the JSON inside a DSSE envelope."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from broker.core.ids import is_uuid7
from broker.core.jsonlimits import JsonObject
from broker.core.text import Name, Text
from policies.conditions import declared
from policies.vocabulary import DATA_CATEGORIES, canonical_category

PARTICIPANT_ID_PATTERN = r"^[a-z]{2}\.[a-z0-9]+(?:-[a-z0-9]+)*$"
ParticipantId = Annotated[str, Field(pattern=PARTICIPANT_ID_PATTERN, max_length=64)]
MESSAGE_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


def _data_category(value: str) -> str:
    canonical = canonical_category(value)
    if canonical not in DATA_CATEGORIES:
        raise ValueError(
            f"{value!r} is not a data category; use one of: {', '.join(sorted(DATA_CATEGORIES))}"
        )
    return canonical


def _declared(value: str) -> str:
    if not declared(value):
        raise ValueError(
            "holds only spaces or invisible characters (Unicode separators, controls or format "
            "characters such as U+200B): declare it in words, or leave the field out"
        )
    return value


Declared = Annotated[Text, Field(min_length=1, max_length=200), AfterValidator(_declared)]
"""A legal basis or purpose as a sender declares it: text with at least one visible
character, the same test as the policy engine's ``present`` (``policies.conditions.declared``),
so a basis of spaces, non-breaking or zero-width spaces is refused at the door (LED arts.
4(1)(b), 8(1); UNTOC art. 18(15)(f)) instead of passing as declared."""


DataCategory = Annotated[Text, Field(max_length=64), AfterValidator(_data_category)]
"""A data category from the closed vocabulary (``policies.vocabulary.DATA_CATEGORIES``),
matched without regard to case and read in its canonical spelling, so the rules on special
categories (LED art. 10) cannot be dodged by writing "Health"."""


class Handling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal["H0", "H1", "H2", "H3"]
    restriction: Text | None = Field(default=None, max_length=2000)


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(min_length=1, max_length=255)
    media_type: Text = Field(min_length=3, max_length=127)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DataSubject(BaseModel):
    """A person in the message, by category only (LED art. 6); their identity stays in the body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: Text = Field(min_length=1, max_length=64)
    category: Literal["suspect", "convicted", "victim", "witness", "contact", "other"]


class _MessageFields(BaseModel):
    """The fields a sender declares, shared by a signed payload and a custodial draft."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(pattern=MESSAGE_TYPE_PATTERN, max_length=64)
    recipient: ParticipantId
    case_id: uuid.UUID | None = None
    in_reply_to: uuid.UUID | None = None
    expires_at: AwareDatetime | None = None
    legal_basis: Declared | None = None
    purpose: Declared | None = None
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=32)
    special_category_basis: (
        Literal["authorised_by_law", "vital_interests", "manifestly_made_public"] | None
    ) = None
    data_subjects: list[DataSubject] = Field(default_factory=list, max_length=200)
    handling: Handling | None = None
    evaluation: str | None = Field(default=None, pattern=r"^[ABCX][1-4]$")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    statement_kind: Literal["fact", "assessment"] | None = None
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None
    urgent: bool = False
    confidential: bool = False
    channel: Text | None = Field(default=None, max_length=64)
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)
    body: JsonObject = Field(default_factory=dict)
    # Onward use (DESIGN.md "Policy decision"; FIU.md): the message this one forwards, the
    # recipients and purposes the provider permits beyond this recipient and purpose, and the
    # use restrictions that bind the material (a forward carries every one of the original's).
    forwarded_from: uuid.UUID | None = None
    # An exculpatory disclosure made before the requested State could be told (UNTOC art.
    # 18(19)): the sender flags it, and the policy obliges it to inform that State at once.
    late_notice: bool = False
    permitted_recipients: list[ParticipantId] = Field(default_factory=list, max_length=50)
    permitted_purposes: list[Declared] = Field(default_factory=list, max_length=20)
    restrictions: list[Annotated[Text, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=50
    )


class MessagePayload(_MessageFields):
    """A complete payload: the declared fields plus the id, sender and time the sender signs."""

    id: uuid.UUID
    sender: ParticipantId
    created_at: AwareDatetime

    @field_validator("id")
    @classmethod
    def _uuid7(cls, value: uuid.UUID) -> uuid.UUID:
        if not is_uuid7(value):
            raise ValueError("id must be a UUIDv7")
        return value

    def created_utc(self) -> dt.datetime:
        return self.created_at.astimezone(dt.UTC)


class DraftPayload(_MessageFields):
    """What a custodial sender submits for the node to complete and sign: a payload without
    id, sender or created_at (the node sets them)."""
