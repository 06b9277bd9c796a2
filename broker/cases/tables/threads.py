"""The threads under a case: consent for further use or dissemination (UNTOC art. 18(19);
Egmont Principles) and feedback on the use made of information."""

from __future__ import annotations

from types import MappingProxyType

from broker.cases import bodies as b
from broker.cases import fold as f
from broker.cases import guards as g
from broker.cases.tables.parts import REQ, RQD
from broker.cases.workflow import START, Transition, Workflow

# --- consent (18(19) use for another proceeding; FIU prior consent for dissemination) -------

CONSENT = Workflow(
    name="consent",
    title="Consent for further use or dissemination",
    citation="UNTOC art. 18(19); Egmont Principles; FATF R.40 INR",
    case_types=frozenset({"mla", "fiu"}),
    parents=frozenset({"mla.request", "fiu.request", "fiu.disclosure"}),
    states=("CONSENT_REQUESTED", "CONSENT_GRANTED", "CONSENT_REFUSED"),
    finals=frozenset({"CONSENT_GRANTED", "CONSENT_REFUSED"}),
    initial=START,
    message_types=MappingProxyType({"mla": "mla.event", "fiu": "fiu.consent"}),
    transitions=(
        Transition(
            event="use_extension_request",
            sources=(START,),
            target="CONSENT_REQUESTED",
            side=REQ,
            summary=(
                "The requesting State asks to use what it received for another proceeding or "
                "purpose."
            ),
            citation="UNTOC art. 18(19)",
            body=b.RequestConsent,
            guards=(g.CONSENT_UNDER_MLA, g.CONSENT_NEEDED),
            audit_kind="consent:requested",
        ),
        Transition(
            event="request_consent",
            sources=(START,),
            target="CONSENT_REQUESTED",
            side=REQ,
            summary=(
                "The receiving FIU asks the providing FIU's prior consent to disseminate to a "
                "recipient or use for a purpose not named."
            ),
            citation="Egmont Principles; FATF R.40 INR; P18",
            body=b.RequestConsent,
            guards=(g.CONSENT_UNDER_FIU, g.CONSENT_NEEDED),
            audit_kind="consent:requested",
        ),
        Transition(
            event="grant_consent",
            sources=("CONSENT_REQUESTED",),
            target="CONSENT_GRANTED",
            side=RQD,
            summary=(
                "The provider consents, possibly on conditions; the consent is on record for "
                "forwarding decisions."
            ),
            citation="UNTOC art. 18(19); Egmont",
            body=b.GrantConsent,
            guards=(g.VALID_UNTIL_FUTURE,),
            audit_kind="consent:granted",
            grants_parent_consent=True,
            fold_effect=f.consent_conditions_set,
        ),
        Transition(
            event="refuse_consent",
            sources=("CONSENT_REQUESTED",),
            target="CONSENT_REFUSED",
            side=RQD,
            summary="The provider refuses, with reasons, never on fiscal or secrecy grounds.",
            citation="Egmont Principles; FATF R.40 INR",
            body=b.RefuseConsent,
            audit_kind="consent:refused",
        ),
    ),
)

# --- feedback -------------------------------------------------------------------------------

FEEDBACK = Workflow(
    name="feedback",
    title="Feedback on the use made of information",
    citation="Egmont Principles; FATF R.40 INR",
    case_types=frozenset({"fiu"}),
    parents=frozenset({"fiu.request", "fiu.disclosure"}),
    states=("FEEDBACK_REQUESTED", "FEEDBACK_GIVEN"),
    finals=frozenset({"FEEDBACK_GIVEN"}),
    initial=START,
    message_types=MappingProxyType({"fiu": "fiu.event"}),
    transitions=(
        Transition(
            event="request_feedback",
            sources=(START,),
            target="FEEDBACK_REQUESTED",
            side=REQ,
            summary="The providing FIU asks what use was made of its information.",
            citation="Egmont Principles",
            body=b.RequestFeedback,
            guards=(g.FEEDBACK_UNDER_FIU,),
        ),
        Transition(
            event="give_feedback",
            sources=("FEEDBACK_REQUESTED",),
            target="FEEDBACK_GIVEN",
            side=RQD,
            summary="The receiving FIU gives feedback.",
            citation="Egmont Principles",
            body=b.GiveFeedback,
        ),
    ),
)
