"""The police information request of Directive (EU) 2023/977: ``intel.request`` answered by
``intel.response``, with its request and event bodies beside the table.

A law enforcement authority asks another Member State's Single Point of Contact for
information it holds; the requested side provides it within the art. 5(1) time limits, which
``broker.cases.clocks`` runs as reference clocks on this workflow: 8 hours for an urgent
request about information directly accessible to it, 3 days for an urgent request about
information it can reach only indirectly (from other authorities or private parties), 7
days for every other request (MLA.md, "reference clocks"). Which limit applies follows from
the request's ``urgent`` flag and its ``information_access``, so an urgent request must say
which it is. The response stops the clock; a refusal states its reasons (art. 6).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from broker.cases import bodies as b
from broker.cases import fold as f
from broker.cases import guards as g
from broker.cases.tables.parts import NODE, REQ, RETAINED, RQD, SYS
from broker.cases.workflow import SUPERVISORS, Transition, Workflow

_977 = "Directive (EU) 2023/977"

# --- bodies -------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntelRequest(_Body):
    """A request for information under Directive (EU) 2023/977. In a draft every field may
    be missing but one: an urgent request says whether the information is directly or
    indirectly accessible, which decides its art. 5(1) time limit."""

    facts: b.Text | None = Field(default=None, description="the facts and the offence")
    reasons: b.Text | None = Field(default=None, description="why the information is sought")
    information_sought: b.Text | None = None
    purpose: b.Code | None = None
    legal_basis: b.Code | None = None
    urgent: bool = Field(default=False, description=f"{_977} art. 5(1)(a), (b)")
    information_access: Literal["direct", "indirect"] | None = Field(
        default=None,
        description="whether the information is directly accessible to the requested side "
        f"(in its own databases) or indirectly (from other authorities or private parties); "
        f"{_977} art. 5(1)",
        validate_default=True,
    )
    deadline: AwareDatetime | None = Field(
        default=None, description=f"a date sooner than the {_977} art. 5(1) time limit; P10"
    )
    deadline_reason: b.ShortText | None = None
    subjects: list[b.PersonConcerned] = Field(default_factory=list, max_length=200)
    transfer_basis: Literal["adequacy", "appropriate_safeguards", "derogation"] | None = None

    @field_validator("information_access")
    @classmethod
    def _urgent_says_access(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("urgent"):
            raise ValueError(
                "an urgent request says whether the information is 'direct'ly or 'indirect'ly "
                f"accessible: that decides its time limit ({_977} art. 5(1))"
            )
        return value


class IntelSubmit(_Body):
    request: IntelRequest | None = Field(
        default=None, description="the amended request; omit to send the draft as it stands"
    )


class IntelRefuse(_Body):
    reasons: b.Text = Field(description=f"the reasons for the refusal ({_977} art. 6)")


# --- the table ----------------------------------------------------------------------------

INTEL_STATES = ("DRAFT", "SUBMITTED", "RESPONDED", "CLOSED", "REFUSED", "WITHDRAWN", "ERASED")
INTEL_FINALS = frozenset({"CLOSED", "REFUSED", "WITHDRAWN", "ERASED"})

INTEL_REQUEST = Workflow(
    name="intel.request",
    title="Police information request",
    citation=f"{_977} arts. 4-6",
    case_types=frozenset({"intel"}),
    states=INTEL_STATES,
    finals=INTEL_FINALS,
    initial="DRAFT",
    sharing_event="submit",
    private_states=frozenset({"DRAFT"}),
    message_types=MappingProxyType({"intel": "intel.event"}),
    request_model=IntelRequest,
    transitions=(
        Transition(
            event="submit",
            sources=("DRAFT",),
            target="SUBMITTED",
            side=REQ,
            summary=(
                "The requesting authority sends the request to the requested Single Point of "
                "Contact; its art. 5(1) time limit runs."
            ),
            citation=f"{_977} arts. 4, 5(1)",
            body=IntelSubmit,
            message_type="intel.request",
            carries_request=True,
            amends_request=True,
        ),
        Transition(
            event="respond",
            sources=("SUBMITTED", "RESPONDED"),
            target="RESPONDED",
            side=RQD,
            summary=(
                "The requested side provides the information (or says it has none), with the "
                "purposes it may be used for; the first response stops the clock."
            ),
            citation=f"{_977} art. 5(1)",
            body=b.Respond,
            guards=(g.RESPONSE_OPEN, g.EVIDENCE_READY),
            message_type="intel.response",
            widens_terms=True,
            fold_effect=f.response_given,
        ),
        Transition(
            event="refuse",
            sources=("SUBMITTED",),
            target="REFUSED",
            side=RQD,
            summary="The requested side refuses, with its reasons.",
            citation=f"{_977} art. 6",
            roles=SUPERVISORS,
            body=IntelRefuse,
        ),
        Transition(
            event="close",
            sources=("RESPONDED",),
            target="CLOSED",
            side=REQ,
            summary="The requesting authority closes the request.",
            citation=f"{_977} art. 5",
        ),
        Transition(
            event="withdraw",
            sources=("DRAFT", "SUBMITTED"),
            target="WITHDRAWN",
            side=REQ,
            summary="The requesting authority withdraws the request.",
            citation=f"{_977} art. 4",
            body=b.Withdraw,
        ),
        Transition(
            event="expire_retention",
            sources=RETAINED,
            target="ERASED",
            side=SYS,
            summary=(
                "At the end of retention the content is crypto-shredded; the audit log remains."
            ),
            citation="LED art. 5; P17",
            roles=NODE,
            erases=True,
        ),
        Transition(
            event="progress_query",
            sources=("SUBMITTED", "RESPONDED"),
            target=None,
            side=REQ,
            summary="The requesting authority asks for progress; the node answers from the case.",
            citation="P10: progress answered from the case's state",
            triggers_progress_reply=True,
        ),
    ),
)
