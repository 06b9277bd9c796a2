"""The schemas of what a case carries: the request a case is opened with, and each event's body.

These are Pydantic models only. The transition tables (``broker.cases.tables``) name the body
model of every event, so the API, the JSON schema the UI builds its forms from, and the docs
all come from here. Values that policy rules compare (grounds, assistance types, channels,
data-subject categories) are checked against the closed vocabularies in
``policies.vocabulary``, so a value the packs would not recognise is refused at the door.

Free text (facts, reasons, questions) is content: it travels only inside the signed, encrypted
event envelope. The case row keeps only the *names* of the fields that are filled in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from broker.envelopes.schemas import DataCategory, Declared, ParticipantId
from policies.vocabulary import (
    ASSISTANCE_TYPES,
    CASE_FIELDS,
    CHANNELS,
    DATA_SUBJECT_CATEGORIES,
    GROUNDS,
)


def _member(name: str, values: frozenset[str]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in values:
            known = ", ".join(sorted(values))
            raise ValueError(f"{value!r} is not a known {name} (one of {known})")
        return value

    return AfterValidator(check)


def _enum(values: frozenset[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": sorted(values)})


Ground = Annotated[str, _member("ground", GROUNDS), _enum(GROUNDS)]
AssistanceType = Annotated[
    str, _member("assistance type", ASSISTANCE_TYPES), _enum(ASSISTANCE_TYPES)
]
Channel = Annotated[str, _member("channel", CHANNELS), _enum(CHANNELS)]
SubjectCategory = Annotated[
    str,
    _member("data-subject category", DATA_SUBJECT_CATEGORIES),
    _enum(DATA_SUBJECT_CATEGORIES),
]

Text = Annotated[str, Field(min_length=1, max_length=20_000)]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]
Code = Declared
"""A purpose or legal basis: declared means a visible character (LED arts. 4(1)(b), 8(1))."""
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Condition = Annotated[str, Field(min_length=1, max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonConcerned(_Body):
    """A person the request is about (18(15)(e)). Identity stays inside the encrypted request;
    only the data-subject category reaches the policy engine (LED art. 6)."""

    ref: str = Field(min_length=1, max_length=64)
    category: SubjectCategory
    identity: str | None = Field(default=None, max_length=500)
    location: str | None = Field(default=None, max_length=500)
    nationality: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")


class MlaRequest(_Body):
    """An MLA request under UNTOC art. 18. In a draft every field may be missing; the 18(15)
    guard and rule P1 refuse to vet or transmit it until the particulars are there."""

    requesting_authority: ShortText | None = Field(default=None, description="18(15)(a)")
    subject_matter: Text | None = Field(default=None, description="18(15)(b)")
    conducting_authority: ShortText | None = Field(default=None, description="18(15)(b)")
    facts_summary: Text | None = Field(default=None, description="18(15)(c)")
    assistance_sought: Text | None = Field(default=None, description="18(15)(d)")
    procedure: Text | None = Field(default=None, description="18(15)(d), 18(17)")
    persons_concerned: list[PersonConcerned] = Field(
        default_factory=list, max_length=200, description="18(15)(e)"
    )
    purpose: Code | None = Field(default=None, description="18(15)(f); the declared purpose")
    assistance_types: list[AssistanceType] = Field(default_factory=list, max_length=9)
    offence: ShortText | None = None
    max_penalty_years: int | None = Field(default=None, ge=0, le=200)
    transnational_basis: ShortText | None = Field(default=None, description="UNTOC art. 3")
    organized_group_involved: bool | None = None
    legal_basis: Code | None = Field(default=None, description="UNTOC art. 18 or a treaty id")
    language: Language | None = Field(default=None, description="18(14)")
    channel: Channel | None = Field(default=None, description="18(13)")
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None
    confidential: bool = Field(default=False, description="18(20)")
    deadline: AwareDatetime | None = Field(default=None, description="18(24)")
    deadline_reason: ShortText | None = Field(default=None, description="18(24)")
    urgent: bool = False
    initiated_by: Literal["written", "oral", "interpol"] = Field(
        default="written", description="an urgent request first made orally or through INTERPOL"
    )
    extraordinary_costs: bool = Field(default=False, description="18(28)")


# What an FIU request states (domain/FIU.md): its form cites the interpretive note.
_R40 = "FATF R.40 INR"


class FiuRequest(_Body):
    """An FIU-to-FIU request (FATF R.40 INR; Egmont Principles)."""

    facts: Text | None = Field(default=None, description=_R40)
    reasons: Text | None = Field(default=None, description=_R40)
    link_to_country: Text | None = Field(default=None, description=_R40)
    intended_use: Text | None = Field(default=None, description=_R40)
    purpose: Code | None = None
    legal_basis: Code | None = None
    urgent: bool = False
    deadline: AwareDatetime | None = None
    deadline_reason: ShortText | None = None
    subjects: list[PersonConcerned] = Field(default_factory=list, max_length=200)
    named_recipients: list[ParticipantId] = Field(
        default_factory=list,
        max_length=50,
        description="authorities the information may go on to; consent is presumed only for "
        "these (P18)",
    )
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None


class FiuDisclosure(_Body):
    """A spontaneous disclosure to a partner FIU."""

    facts: Text | None = None
    purpose: Code | None = None
    legal_basis: Code | None = None
    subjects: list[PersonConcerned] = Field(default_factory=list, max_length=200)
    permitted_recipients: list[ParticipantId] = Field(default_factory=list, max_length=50)
    permitted_purposes: list[Code] = Field(default_factory=list, max_length=20)
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None


class ExtraditionRequest(_Body):
    """An extradition request under UNTOC art. 16. In a draft every field may be missing; the
    policy packs decide what the transmission needs (legal basis, purpose, transfer basis)."""

    requesting_authority: ShortText | None = Field(default=None)
    persons_concerned: list[PersonConcerned] = Field(
        default_factory=list, max_length=20, description="the person sought"
    )
    offence: ShortText | None = Field(default=None, description="16(1): the offence")
    max_penalty_years: int | None = Field(default=None, ge=0, le=200)
    facts_summary: Text | None = None
    warrant_reference: ShortText | None = Field(
        default=None, description="the arrest warrant or enforceable judgment"
    )
    purpose: Code | None = Field(default=None, description="prosecution or enforcement")
    legal_basis: Code | None = Field(default=None, description="UNTOC art. 16 or a treaty id")
    language: Language | None = None
    channel: Channel | None = None
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None
    urgent: bool = Field(default=False, description="16(9): provisional arrest may be asked")
    confidential: bool = False


class JitAgreement(_Body):
    """The agreement setting up a joint investigation team (UNTOC art. 19): its reference, its
    parties (the member participants) and its expiry. In a draft every field may be missing;
    rule P21.agreement refuses to open the team until all three are there."""

    agreement_reference: Code | None = Field(default=None, description="art. 19")
    parties: list[ParticipantId] = Field(
        default_factory=list, max_length=50, description="art. 19: the member participants"
    )
    expiry: AwareDatetime | None = Field(
        default=None, description="art. 19: after it, the team exchanges nothing more"
    )
    subject_matter: Text | None = None
    purpose: Code | None = Field(default=None, description="the investigation the team serves")
    legal_basis: Code | None = Field(default=None, description="UNTOC art. 19 or a treaty id")
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None


# --- event bodies --------------------------------------------------------------------------


class NoBody(_Body):
    """This event carries nothing but its name."""


class SubmitForVetting(_Body):
    request: MlaRequest | None = Field(
        default=None, description="the amended request; omit to submit the draft as it stands"
    )


class Transmit(_Body):
    request: MlaRequest | None = Field(
        default=None,
        description="filled by the node with the vetted request; a self-signed envelope must "
        "carry that same request",
    )


class ReturnToDrafter(_Body):
    comments: Text


class RequestInformation(_Body):
    question: Text


class ProvideInformation(_Body):
    information: Text


class OpenConsultation(_Body):
    reason: Literal["intended_refusal", "postponement", "costs", "confidentiality"]
    message: Text


class OfferConditions(_Body):
    conditions: list[Condition] = Field(min_length=1, max_length=20)


class BackToAssessment(_Body):
    comments: Text | None = None


class AssignExecution(_Body):
    executing_authority: ShortText


class Evidence(_Body):
    evidence: list[uuid.UUID] = Field(
        min_length=1, max_length=100, description="ids of evidence files uploaded to the case"
    )
    note: Text | None = None
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=32)
    special_category_basis: (
        Literal["authorised_by_law", "vital_interests", "manifestly_made_public"] | None
    ) = Field(default=None, description="LED art. 10 basis when special categories are sent")
    data_subject_categories: list[SubjectCategory] = Field(default_factory=list, max_length=6)


class Postpone(_Body):
    grounds: list[Ground] = Field(default_factory=list, max_length=13)
    reasons: Text | None = None
    review_date: AwareDatetime | None = None


class Refuse(_Body):
    grounds: list[Ground] = Field(default_factory=list, max_length=13)
    reasons: Text | None = None


class Withdraw(_Body):
    reason: Text


class NoLongerNeeded(_Body):
    reason: Text | None = None


class WrittenConfirmation(_Body):
    reference: ShortText | None = None


class ExculpatoryNotice(_Body):
    note: Text | None = None


class RecordAssurance(_Body):
    assurance: Text


class FiuSubmit(_Body):
    request: FiuRequest | None = None


class DisclosureSubmit(_Body):
    disclosure: FiuDisclosure | None = None


class Respond(_Body):
    kind: Literal["interim", "partial", "full", "negative"]
    summary: Text | None = None
    evidence: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    permitted_recipients: list[ParticipantId] = Field(default_factory=list, max_length=50)
    permitted_purposes: list[Code] = Field(min_length=1, max_length=20)
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=32)
    special_category_basis: (
        Literal["authorised_by_law", "vital_interests", "manifestly_made_public"] | None
    ) = Field(default=None, description="LED art. 10 basis when special categories are sent")
    data_subject_categories: list[SubjectCategory] = Field(default_factory=list, max_length=6)


class RequestConsent(_Body):
    recipient: ParticipantId = Field(description="who would receive or use the material")
    purpose: Code = Field(description="the purpose it would be used for")
    reasons: Text | None = None


class GrantConsent(_Body):
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=20,
        description="UNTOC art. 18(26); P9: restrictions every forward the consent permits carries",
    )
    valid_until: AwareDatetime | None = Field(
        default=None, description="after it the consent no longer counts; a date in the future"
    )


class RefuseConsent(_Body):
    grounds: list[Ground] = Field(default_factory=list, max_length=13)
    reasons: Text | None = None


class RequestFeedback(_Body):
    question: Text | None = None


class GiveFeedback(_Body):
    feedback: Text


class TransmitExtradition(_Body):
    request: ExtraditionRequest | None = Field(
        default=None, description="the amended request; omit to send the draft as it stands"
    )


class ConsultExtradition(_Body):
    reason: Literal["intended_refusal", "information", "surrender_terms"]
    message: Text


class RequestProvisionalArrest(_Body):
    reasons: Text


class ProvisionalArrest(_Body):
    note: Text | None = None


class Surrender(_Body):
    note: Text | None = None


class SubmitForProsecution(_Body):
    authority: ShortText = Field(description="16(10): the competent authority the case goes to")
    reference: ShortText | None = None


class ReportProsecution(_Body):
    outcome: Literal["indicted", "convicted", "acquitted", "discontinued", "other"]
    summary: Text | None = None


class OpenTeam(_Body):
    request: JitAgreement | None = Field(
        default=None, description="the amended agreement; omit to open the draft as it stands"
    )


class Exchange(_Body):
    recipient: ParticipantId = Field(description="the member the exchange goes to")
    subject: ShortText | None = None
    text: Text
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=32)
    data_subject_categories: list[SubjectCategory] = Field(default_factory=list, max_length=6)


class ExtendTeam(_Body):
    expiry: AwareDatetime = Field(description="art. 19: the new expiry of the agreement")
    reference: ShortText | None = Field(default=None, description="the amending agreement")


class CloseTeam(_Body):
    note: Text | None = None


def filled_fields(*models: BaseModel | None) -> frozenset[str]:
    """Names (from ``policies.vocabulary.CASE_FIELDS``) of the fields filled in ``models``:
    what the policy context's ``case_fields`` holds. A field counts when it is not None, not
    empty and not blank."""
    names: set[str] = set()
    for model in models:
        if model is None:
            continue
        for name in type(model).model_fields:
            if name in CASE_FIELDS and _filled(getattr(model, name)):
                names.add(name)
    return frozenset(names)


def _filled(value: object) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | set | frozenset | dict):
        return bool(value)
    return True


def subject_categories(persons: Iterable[PersonConcerned]) -> frozenset[str]:
    return frozenset(p.category for p in persons)


def as_json(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a body, without unset defaults that are empty."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return data


def review_date_of(body: BaseModel) -> dt.datetime | None:
    value = getattr(body, "review_date", None)
    return value if isinstance(value, dt.datetime) else None
