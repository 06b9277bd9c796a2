"""The FIU request and the FIU spontaneous disclosure, from ``domain/FIU.md``."""

from __future__ import annotations

from types import MappingProxyType

from broker.cases import bodies as b
from broker.cases import fold as f
from broker.cases import guards as g
from broker.cases.tables.parts import NODE, REQ, RETAINED, RQD, SYS
from broker.cases.workflow import SUPERVISORS, Transition, Workflow

# --- FIU request ---------------------------------------------------------------------------

FIU_STATES = (
    "DRAFT",
    "SUBMITTED",
    "ACKNOWLEDGED",
    "PROCESSING",
    "RESPONDED",
    "CLOSED",
    "REFUSED",
    "WITHDRAWN",
    "ERASED",
)
FIU_FINALS = frozenset({"CLOSED", "REFUSED", "WITHDRAWN", "ERASED"})
FIU_SHARED_OPEN = ("SUBMITTED", "ACKNOWLEDGED", "PROCESSING", "RESPONDED")

FIU_REQUEST = Workflow(
    name="fiu.request",
    title="FIU-to-FIU request",
    citation="FATF R.40 and its interpretive note; Egmont Principles for Information Exchange",
    case_types=frozenset({"fiu"}),
    states=FIU_STATES,
    finals=FIU_FINALS,
    initial="DRAFT",
    sharing_event="submit",
    private_states=frozenset({"DRAFT"}),
    message_types=MappingProxyType({"fiu": "fiu.event"}),
    request_model=b.FiuRequest,
    transitions=(
        Transition(
            event="submit",
            sources=("DRAFT",),
            target="SUBMITTED",
            side=REQ,
            summary=(
                "The requesting FIU sends the request: facts, reasons, link to the country, "
                "intended use."
            ),
            citation="FATF R.40 INR; Egmont",
            body=b.FiuSubmit,
            message_type="fiu.request",
            carries_request=True,
            amends_request=True,
        ),
        Transition(
            event="acknowledge",
            sources=("SUBMITTED",),
            target="ACKNOWLEDGED",
            side=RQD,
            summary="The requested FIU acknowledges; the reply clock runs.",
            citation="Egmont Principles",
        ),
        Transition(
            event="process",
            sources=("ACKNOWLEDGED",),
            target="PROCESSING",
            side=RQD,
            summary="The requested FIU processes the request.",
            citation="Egmont Principles",
        ),
        Transition(
            event="respond",
            sources=("PROCESSING", "RESPONDED"),
            target="RESPONDED",
            side=RQD,
            summary=(
                "An interim, partial, full or negative response, with the recipients and purposes "
                "it may be used for."
            ),
            citation="Egmont Principles (30 business days)",
            body=b.Respond,
            guards=(g.RESPONSE_OPEN, g.EVIDENCE_READY),
            message_type="fiu.response",
            widens_terms=True,
            # P18: the recipients the request named may receive the response (Egmont).
            permits_named_recipients=True,
            fold_effect=f.response_given,
        ),
        Transition(
            event="refuse",
            sources=("ACKNOWLEDGED", "PROCESSING"),
            target="REFUSED",
            side=RQD,
            summary="The requested FIU refuses, never on fiscal or secrecy grounds.",
            citation="FATF R.40 INR; Egmont",
            roles=SUPERVISORS,
            body=b.Refuse,
        ),
        Transition(
            event="close",
            sources=("RESPONDED",),
            target="CLOSED",
            side=REQ,
            summary="The requesting FIU closes the request.",
            citation="Egmont Principles",
        ),
        Transition(
            event="withdraw",
            sources=("DRAFT", "SUBMITTED", "ACKNOWLEDGED", "PROCESSING"),
            target="WITHDRAWN",
            side=REQ,
            summary="The requesting FIU withdraws the request.",
            citation="Egmont Principles",
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
            sources=FIU_SHARED_OPEN,
            target=None,
            side=REQ,
            summary="The requesting FIU asks for progress; the node answers from the case state.",
            citation="Egmont Principles",
            triggers_progress_reply=True,
        ),
    ),
)

# --- FIU spontaneous disclosure -------------------------------------------------------------

DISCLOSURE = Workflow(
    name="fiu.disclosure",
    title="FIU spontaneous disclosure",
    citation="FATF R.40 INR; Egmont Principles; EU Directive 2024/1640 art. 31",
    case_types=frozenset({"fiu"}),
    states=("DRAFT", "SPONTANEOUS_DISCLOSURE", "ACKNOWLEDGED", "WITHDRAWN", "ERASED"),
    finals=frozenset({"ACKNOWLEDGED", "WITHDRAWN", "ERASED"}),
    initial="DRAFT",
    sharing_event="submit",
    private_states=frozenset({"DRAFT"}),
    message_types=MappingProxyType({"fiu": "fiu.event"}),
    request_model=b.FiuDisclosure,
    transitions=(
        Transition(
            event="submit",
            sources=("DRAFT",),
            target="SPONTANEOUS_DISCLOSURE",
            side=REQ,
            summary=(
                "The FIU discloses, naming the recipients and purposes the information may serve."
            ),
            citation="FATF R.40 INR; Egmont",
            body=b.DisclosureSubmit,
            message_type="fiu.disclosure",
            carries_request=True,
            amends_request=True,
            widens_terms=True,
        ),
        Transition(
            event="acknowledge",
            sources=("SPONTANEOUS_DISCLOSURE",),
            target="ACKNOWLEDGED",
            side=RQD,
            summary="The receiving FIU acknowledges the disclosure.",
            citation="Egmont Principles",
        ),
        Transition(
            event="withdraw",
            sources=("DRAFT",),
            target="WITHDRAWN",
            side=REQ,
            summary="The draft disclosure is abandoned.",
            citation="Egmont Principles",
            body=b.Withdraw,
        ),
        Transition(
            event="expire_retention",
            sources=("ACKNOWLEDGED", "WITHDRAWN"),
            target="ERASED",
            side=SYS,
            summary=(
                "At the end of retention the content is crypto-shredded; the audit log remains."
            ),
            citation="LED art. 5; P17",
            roles=NODE,
            erases=True,
        ),
    ),
)
