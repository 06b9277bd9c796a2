"""The five transition tables: MLA request (UNTOC art. 18), FIU request, FIU spontaneous
disclosure, consent, feedback. ``domain/MLA.md`` and ``domain/FIU.md`` are their source.

Event names are those of ``policies.vocabulary.CASE_EVENTS`` (the packs match on them); two
side events the packs do not look at are this module's own: ``record_assurance`` (P22) and
the node's ``expire_retention`` is the vocabulary's. Everything else about a workflow (the
API's allowed next events, the diagrams, docs/workflows.md) is derived from these rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from broker.cases import bodies as b
from broker.cases import guards as g
from broker.cases.workflow import HANDLERS, START, SUPERVISORS, Side, Transition, Workflow

REQ, RQD, SYS = Side.REQUESTING, Side.REQUESTED, Side.SYSTEM
PEOPLE = frozenset({"officer", "supervisor"})
NODE = frozenset({"system"})

# --- MLA request (UNTOC art. 18) -----------------------------------------------------------

MLA_STATES = (
    "DRAFT",
    "CA_VETTING",
    "TRANSMITTED",
    "RECEIVED",
    "ASSESSMENT",
    "INFO_REQUESTED",
    "CONSULTATION",
    "CONDITIONS_OFFERED",
    "ACCEPTED",
    "IN_EXECUTION",
    "POSTPONED",
    "EXECUTED",
    "CLOSED",
    "REFUSED",
    "WITHDRAWN",
    "ERASED",
)
MLA_FINALS = frozenset({"CLOSED", "REFUSED", "WITHDRAWN", "ERASED"})
MLA_OPEN = tuple(s for s in MLA_STATES if s not in MLA_FINALS)
# Drafting and vetting: the requesting State's own business until it transmits.
MLA_PRIVATE = frozenset({"DRAFT", "CA_VETTING"})
MLA_SHARED_OPEN = tuple(s for s in MLA_OPEN if s not in MLA_PRIVATE)
# The case records an open_consultation puts on file beside "consultation", by its reason.
CONSULTATION_RECORDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "costs": frozenset({"cost_consultation"}),
        # The consultation itself is the prompt notice 18(20) requires of a requested State
        # that cannot keep the request confidential.
        "confidentiality": frozenset({"confidentiality_cannot_be_kept", "confidentiality_notice"}),
    }
)
RETAINED = ("CLOSED", "REFUSED", "WITHDRAWN")

MLA = Workflow(
    name="mla.request",
    title="Mutual legal assistance request",
    citation="UNTOC art. 18",
    case_types=frozenset({"mla"}),
    states=MLA_STATES,
    finals=MLA_FINALS,
    initial="DRAFT",
    sharing_event="transmit",
    private_states=MLA_PRIVATE,
    message_types=MappingProxyType({"mla": "mla.event"}),
    request_model=b.MlaRequest,
    transitions=(
        Transition(
            event="submit_for_vetting",
            sources=("DRAFT",),
            target="CA_VETTING",
            side=REQ,
            summary="The requesting authority submits the request to its central authority.",
            citation="UNTOC art. 18(15)",
            body=b.SubmitForVetting,
            drafting=True,
            carries_request=True,
            amends_request=True,
        ),
        Transition(
            event="return_to_drafter",
            sources=("CA_VETTING",),
            target="DRAFT",
            side=REQ,
            summary="The central authority returns the request with comments.",
            citation="UNTOC art. 18(15)",
            roles=SUPERVISORS,
            body=b.ReturnToDrafter,
        ),
        Transition(
            event="transmit",
            sources=("CA_VETTING",),
            target="TRANSMITTED",
            side=REQ,
            summary="The central authority transmits the vetted request to the requested State.",
            citation="UNTOC art. 18(13)-(15)",
            roles=SUPERVISORS,
            body=b.Transmit,
            guards=(g.FOUR_EYES,),
            carries_request=True,
            request_as_stored=True,
        ),
        Transition(
            event="acknowledge",
            sources=("TRANSMITTED",),
            target="RECEIVED",
            side=RQD,
            summary=(
                "The requested central authority acknowledges receipt; the response clock starts."
            ),
            citation="UNTOC art. 18(13), 18(24)",
            on_receipt=True,
        ),
        Transition(
            event="start_assessment",
            sources=("RECEIVED",),
            target="ASSESSMENT",
            side=RQD,
            summary="The requested central authority starts assessing the request.",
            citation="UNTOC art. 18(17)",
        ),
        Transition(
            event="request_information",
            sources=("ASSESSMENT",),
            target="INFO_REQUESTED",
            side=RQD,
            summary="The requested State asks for additional information; the clock pauses.",
            citation="UNTOC art. 18(16)",
            body=b.RequestInformation,
            pauses_clock=True,
        ),
        Transition(
            event="provide_information",
            sources=("INFO_REQUESTED",),
            target="ASSESSMENT",
            side=REQ,
            summary="The requesting State answers; the clock runs again.",
            citation="UNTOC art. 18(16)",
            body=b.ProvideInformation,
            resumes_clock=True,
        ),
        Transition(
            event="open_consultation",
            sources=("ASSESSMENT",),
            target="CONSULTATION",
            side=RQD,
            summary=(
                "Before refusing or postponing, on costs or on confidentiality, the requested "
                "State consults the requesting State."
            ),
            citation="UNTOC art. 18(20), 18(26), 18(28)",
            body=b.OpenConsultation,
            records=frozenset({"consultation"}),
            records_by_reason=CONSULTATION_RECORDS,
        ),
        Transition(
            event="offer_conditions",
            sources=("CONSULTATION",),
            target="CONDITIONS_OFFERED",
            side=RQD,
            summary="The requested State offers to assist on terms and conditions.",
            citation="UNTOC art. 18(26)",
            body=b.OfferConditions,
        ),
        Transition(
            event="accept_conditions",
            sources=("CONDITIONS_OFFERED",),
            target="ACCEPTED",
            side=REQ,
            summary=(
                "The requesting State accepts the conditions; they bind it as use restrictions on "
                "everything the case returns."
            ),
            citation="UNTOC art. 18(26); P9",
            roles=SUPERVISORS,
        ),
        Transition(
            event="back_to_assessment",
            sources=("CONSULTATION", "CONDITIONS_OFFERED"),
            target="ASSESSMENT",
            side=RQD,
            summary="The consultation ends without refusal or conditions.",
            citation="UNTOC art. 18(26)",
            body=b.BackToAssessment,
        ),
        Transition(
            event="accept",
            sources=("ASSESSMENT",),
            target="ACCEPTED",
            side=RQD,
            summary="The requested State accepts to execute the request.",
            citation="UNTOC art. 18(17)",
        ),
        Transition(
            event="assign_execution",
            sources=("ACCEPTED",),
            target="IN_EXECUTION",
            side=RQD,
            summary="The central authority assigns execution to the competent authority.",
            citation="UNTOC art. 18(17)",
            body=b.AssignExecution,
        ),
        Transition(
            event="deliver_partial",
            sources=("IN_EXECUTION",),
            target="IN_EXECUTION",
            side=RQD,
            summary="A partial evidence package goes to the requesting State.",
            citation="UNTOC art. 18(3), 18(24)",
            body=b.Evidence,
            guards=(g.EVIDENCE_READY,),
        ),
        Transition(
            event="postpone",
            sources=("IN_EXECUTION",),
            target="POSTPONED",
            side=RQD,
            summary="Execution is postponed because it interferes with an ongoing investigation.",
            citation="UNTOC art. 18(25)-(26)",
            body=b.Postpone,
            guards=(g.REVIEW_IN_FUTURE,),
        ),
        Transition(
            event="resume",
            sources=("POSTPONED",),
            target="IN_EXECUTION",
            side=RQD,
            summary="Execution resumes.",
            citation="UNTOC art. 18(25)",
        ),
        Transition(
            event="complete",
            sources=("IN_EXECUTION",),
            target="EXECUTED",
            side=RQD,
            summary="The final evidence package goes to the requesting State.",
            citation="UNTOC art. 18(24)",
            body=b.Evidence,
            guards=(g.EVIDENCE_READY,),
        ),
        Transition(
            event="refuse",
            sources=("CONSULTATION",),
            target="REFUSED",
            side=RQD,
            summary=(
                "The requested State refuses, on a ground of 18(21), with reasons, after "
                "consultation."
            ),
            citation="UNTOC art. 18(8), 18(21)-(23), 18(26)",
            roles=SUPERVISORS,
            body=b.Refuse,
        ),
        Transition(
            event="withdraw",
            sources=MLA_OPEN,
            target="WITHDRAWN",
            side=REQ,
            summary="The requesting State withdraws the request.",
            citation="UNTOC art. 18(24)",
            body=b.Withdraw,
        ),
        Transition(
            event="confirm_receipt",
            sources=("EXECUTED",),
            target="CLOSED",
            side=REQ,
            summary=(
                "The requesting State confirms receipt; speciality and conditions outlive closure."
            ),
            citation="UNTOC art. 18(19)",
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
        # side events: the state stays
        Transition(
            event="progress_query",
            sources=MLA_SHARED_OPEN,
            target=None,
            side=REQ,
            summary="The requesting State asks for progress; the node answers from the case state.",
            citation="UNTOC art. 18(24)",
            triggers_progress_reply=True,
        ),
        Transition(
            event="no_longer_needed",
            sources=MLA_SHARED_OPEN,
            target=None,
            side=REQ,
            summary="The requesting State says the assistance is no longer needed.",
            citation="UNTOC art. 18(24)",
            body=b.NoLongerNeeded,
        ),
        Transition(
            event="exculpatory_notice",
            sources=(*MLA_SHARED_OPEN, "CLOSED"),
            target=None,
            side=REQ,
            summary="Notice, before disclosure, that received material is exculpatory.",
            citation="UNTOC art. 18(19); P5",
            body=b.ExculpatoryNotice,
            records=frozenset({"exculpatory_notice"}),
        ),
        Transition(
            event="written_confirmation",
            sources=MLA_SHARED_OPEN,
            target=None,
            side=REQ,
            summary=(
                "Written confirmation of an urgent request first made orally or through INTERPOL."
            ),
            citation="UNTOC art. 18(14); P3",
            body=b.WrittenConfirmation,
            guards=(g.CONFIRMS_ORAL,),
            records=frozenset({"written_confirmation"}),
        ),
        Transition(
            event="record_assurance",
            sources=MLA_OPEN,
            target=None,
            side=REQ,
            summary=(
                "An assurance is put on record (for example that the death penalty will not be "
                "sought): a transfer to a flagged State, or execution for one, needs it; before "
                "transmission it is the one the requesting State obtained in advance."
            ),
            citation="UNTOC art. 16(14); P22",
            body=b.RecordAssurance,
        ),
    ),
    state_notes=MappingProxyType(
        {
            "INFO_REQUESTED": "clock paused",
            "POSTPONED": "review date set",
        }
    ),
)

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
            permits_named_recipients=True,
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
            audit_kind="consent:granted",
            grants_parent_consent=True,
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

WORKFLOWS: Mapping[str, Workflow] = MappingProxyType(
    {w.name: w for w in (MLA, FIU_REQUEST, DISCLOSURE, CONSENT, FEEDBACK)}
)
ROOT_WORKFLOWS = frozenset(w.name for w in WORKFLOWS.values() if not w.parents)
CHILD_WORKFLOWS = frozenset(w.name for w in WORKFLOWS.values() if w.parents)

__all__ = ["CHILD_WORKFLOWS", "HANDLERS", "ROOT_WORKFLOWS", "WORKFLOWS"]
