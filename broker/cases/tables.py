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
MLA_SHARED_OPEN = tuple(s for s in MLA_OPEN if s not in ("DRAFT", "CA_VETTING"))
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
    message_types=MappingProxyType({"mla": "mla.event"}),
    request_model=b.MlaRequest,
    transitions=(
        Transition(
            "submit_for_vetting",
            ("DRAFT",),
            "CA_VETTING",
            REQ,
            "The requesting authority submits the request to its central authority.",
            "UNTOC art. 18(15)",
            body=b.SubmitForVetting,
        ),
        Transition(
            "return_to_drafter",
            ("CA_VETTING",),
            "DRAFT",
            REQ,
            "The central authority returns the request with comments.",
            "UNTOC art. 18(15)",
            roles=SUPERVISORS,
            body=b.ReturnToDrafter,
        ),
        Transition(
            "transmit",
            ("CA_VETTING",),
            "TRANSMITTED",
            REQ,
            "The central authority transmits the vetted request to the requested State.",
            "UNTOC art. 18(13)-(15)",
            roles=SUPERVISORS,
            body=b.Transmit,
            guards=(g.FOUR_EYES,),
        ),
        Transition(
            "acknowledge",
            ("TRANSMITTED",),
            "RECEIVED",
            RQD,
            "The requested central authority acknowledges receipt; the response clock starts.",
            "UNTOC art. 18(13), 18(24)",
        ),
        Transition(
            "start_assessment",
            ("RECEIVED",),
            "ASSESSMENT",
            RQD,
            "The requested central authority starts assessing the request.",
            "UNTOC art. 18(17)",
        ),
        Transition(
            "request_information",
            ("ASSESSMENT",),
            "INFO_REQUESTED",
            RQD,
            "The requested State asks for additional information; the clock pauses.",
            "UNTOC art. 18(16)",
            body=b.RequestInformation,
            pauses_clock=True,
        ),
        Transition(
            "provide_information",
            ("INFO_REQUESTED",),
            "ASSESSMENT",
            REQ,
            "The requesting State answers; the clock runs again.",
            "UNTOC art. 18(16)",
            body=b.ProvideInformation,
            resumes_clock=True,
        ),
        Transition(
            "open_consultation",
            ("ASSESSMENT",),
            "CONSULTATION",
            RQD,
            "Before refusing or postponing, on costs or on confidentiality, the requested State "
            "consults the requesting State.",
            "UNTOC art. 18(20), 18(26), 18(28)",
            body=b.OpenConsultation,
            records=frozenset({"consultation"}),
        ),
        Transition(
            "offer_conditions",
            ("CONSULTATION",),
            "CONDITIONS_OFFERED",
            RQD,
            "The requested State offers to assist on terms and conditions.",
            "UNTOC art. 18(26)",
            body=b.OfferConditions,
        ),
        Transition(
            "accept_conditions",
            ("CONDITIONS_OFFERED",),
            "ACCEPTED",
            REQ,
            "The requesting State accepts the conditions; they bind it as use restrictions on "
            "everything the case returns.",
            "UNTOC art. 18(26); P9",
            roles=SUPERVISORS,
        ),
        Transition(
            "back_to_assessment",
            ("CONSULTATION", "CONDITIONS_OFFERED"),
            "ASSESSMENT",
            RQD,
            "The consultation ends without refusal or conditions.",
            "UNTOC art. 18(26)",
            body=b.BackToAssessment,
        ),
        Transition(
            "accept",
            ("ASSESSMENT",),
            "ACCEPTED",
            RQD,
            "The requested State accepts to execute the request.",
            "UNTOC art. 18(17)",
        ),
        Transition(
            "assign_execution",
            ("ACCEPTED",),
            "IN_EXECUTION",
            RQD,
            "The central authority assigns execution to the competent authority.",
            "UNTOC art. 18(17)",
            body=b.AssignExecution,
        ),
        Transition(
            "deliver_partial",
            ("IN_EXECUTION",),
            "IN_EXECUTION",
            RQD,
            "A partial evidence package goes to the requesting State.",
            "UNTOC art. 18(3), 18(24)",
            body=b.Evidence,
            guards=(g.EVIDENCE_READY,),
        ),
        Transition(
            "postpone",
            ("IN_EXECUTION",),
            "POSTPONED",
            RQD,
            "Execution is postponed because it interferes with an ongoing investigation.",
            "UNTOC art. 18(25)-(26)",
            body=b.Postpone,
            guards=(g.REVIEW_IN_FUTURE,),
        ),
        Transition(
            "resume",
            ("POSTPONED",),
            "IN_EXECUTION",
            RQD,
            "Execution resumes.",
            "UNTOC art. 18(25)",
        ),
        Transition(
            "complete",
            ("IN_EXECUTION",),
            "EXECUTED",
            RQD,
            "The final evidence package goes to the requesting State.",
            "UNTOC art. 18(24)",
            body=b.Evidence,
            guards=(g.EVIDENCE_READY,),
        ),
        Transition(
            "refuse",
            ("CONSULTATION",),
            "REFUSED",
            RQD,
            "The requested State refuses, on a ground of 18(21), with reasons, after consultation.",
            "UNTOC art. 18(8), 18(21)-(23), 18(26)",
            roles=SUPERVISORS,
            body=b.Refuse,
        ),
        Transition(
            "withdraw",
            MLA_OPEN,
            "WITHDRAWN",
            REQ,
            "The requesting State withdraws the request.",
            "UNTOC art. 18(24)",
            body=b.Withdraw,
        ),
        Transition(
            "confirm_receipt",
            ("EXECUTED",),
            "CLOSED",
            REQ,
            "The requesting State confirms receipt; speciality and conditions outlive closure.",
            "UNTOC art. 18(19)",
        ),
        Transition(
            "expire_retention",
            RETAINED,
            "ERASED",
            SYS,
            "At the end of retention the content is crypto-shredded; the audit log remains.",
            "LED art. 5; P17",
            roles=NODE,
        ),
        # side events: the state stays
        Transition(
            "progress_query",
            MLA_SHARED_OPEN,
            None,
            REQ,
            "The requesting State asks for progress; the node answers from the case state.",
            "UNTOC art. 18(24)",
        ),
        Transition(
            "no_longer_needed",
            MLA_SHARED_OPEN,
            None,
            REQ,
            "The requesting State says the assistance is no longer needed.",
            "UNTOC art. 18(24)",
            body=b.NoLongerNeeded,
        ),
        Transition(
            "exculpatory_notice",
            (*MLA_SHARED_OPEN, "CLOSED"),
            None,
            REQ,
            "Notice, before disclosure, that received material is exculpatory.",
            "UNTOC art. 18(19); P5",
            body=b.ExculpatoryNotice,
            records=frozenset({"exculpatory_notice"}),
        ),
        Transition(
            "written_confirmation",
            MLA_SHARED_OPEN,
            None,
            REQ,
            "Written confirmation of an urgent request first made orally or through INTERPOL.",
            "UNTOC art. 18(14); P3",
            body=b.WrittenConfirmation,
            guards=(g.CONFIRMS_ORAL,),
            records=frozenset({"written_confirmation"}),
        ),
        Transition(
            "record_assurance",
            MLA_OPEN,
            None,
            REQ,
            "An assurance is put on record (for example that the death penalty will not be "
            "sought): a transfer to a flagged State, or execution for one, needs it; before "
            "transmission it is the one the requesting State obtained in advance.",
            "UNTOC art. 16(14); P22",
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
    message_types=MappingProxyType({"fiu": "fiu.event"}),
    request_model=b.FiuRequest,
    transitions=(
        Transition(
            "submit",
            ("DRAFT",),
            "SUBMITTED",
            REQ,
            "The requesting FIU sends the request: facts, reasons, link to the country, "
            "intended use.",
            "FATF R.40 INR; Egmont",
            body=b.FiuSubmit,
            message_type="fiu.request",
        ),
        Transition(
            "acknowledge",
            ("SUBMITTED",),
            "ACKNOWLEDGED",
            RQD,
            "The requested FIU acknowledges; the reply clock runs.",
            "Egmont Principles",
        ),
        Transition(
            "process",
            ("ACKNOWLEDGED",),
            "PROCESSING",
            RQD,
            "The requested FIU processes the request.",
            "Egmont Principles",
        ),
        Transition(
            "respond",
            ("PROCESSING", "RESPONDED"),
            "RESPONDED",
            RQD,
            "An interim, partial, full or negative response, with the recipients and purposes "
            "it may be used for.",
            "Egmont Principles (30 business days)",
            body=b.Respond,
            guards=(g.RESPONSE_OPEN, g.EVIDENCE_READY),
            message_type="fiu.response",
        ),
        Transition(
            "refuse",
            ("ACKNOWLEDGED", "PROCESSING"),
            "REFUSED",
            RQD,
            "The requested FIU refuses, never on fiscal or secrecy grounds.",
            "FATF R.40 INR; Egmont",
            roles=SUPERVISORS,
            body=b.Refuse,
        ),
        Transition(
            "close",
            ("RESPONDED",),
            "CLOSED",
            REQ,
            "The requesting FIU closes the request.",
            "Egmont Principles",
        ),
        Transition(
            "withdraw",
            ("DRAFT", "SUBMITTED", "ACKNOWLEDGED", "PROCESSING"),
            "WITHDRAWN",
            REQ,
            "The requesting FIU withdraws the request.",
            "Egmont Principles",
            body=b.Withdraw,
        ),
        Transition(
            "expire_retention",
            RETAINED,
            "ERASED",
            SYS,
            "At the end of retention the content is crypto-shredded; the audit log remains.",
            "LED art. 5; P17",
            roles=NODE,
        ),
        Transition(
            "progress_query",
            FIU_SHARED_OPEN,
            None,
            REQ,
            "The requesting FIU asks for progress; the node answers from the case state.",
            "Egmont Principles",
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
    message_types=MappingProxyType({"fiu": "fiu.event"}),
    request_model=b.FiuDisclosure,
    transitions=(
        Transition(
            "submit",
            ("DRAFT",),
            "SPONTANEOUS_DISCLOSURE",
            REQ,
            "The FIU discloses, naming the recipients and purposes the information may serve.",
            "FATF R.40 INR; Egmont",
            body=b.DisclosureSubmit,
            message_type="fiu.disclosure",
        ),
        Transition(
            "acknowledge",
            ("SPONTANEOUS_DISCLOSURE",),
            "ACKNOWLEDGED",
            RQD,
            "The receiving FIU acknowledges the disclosure.",
            "Egmont Principles",
        ),
        Transition(
            "withdraw",
            ("DRAFT",),
            "WITHDRAWN",
            REQ,
            "The draft disclosure is abandoned.",
            "Egmont Principles",
            body=b.Withdraw,
        ),
        Transition(
            "expire_retention",
            ("ACKNOWLEDGED", "WITHDRAWN"),
            "ERASED",
            SYS,
            "At the end of retention the content is crypto-shredded; the audit log remains.",
            "LED art. 5; P17",
            roles=NODE,
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
            "use_extension_request",
            (START,),
            "CONSENT_REQUESTED",
            REQ,
            "The requesting State asks to use what it received for another proceeding or purpose.",
            "UNTOC art. 18(19)",
            body=b.RequestConsent,
            guards=(g.CONSENT_UNDER_MLA, g.CONSENT_NEEDED),
            audit_kind="consent:requested",
        ),
        Transition(
            "request_consent",
            (START,),
            "CONSENT_REQUESTED",
            REQ,
            "The receiving FIU asks the providing FIU's prior consent to disseminate to a "
            "recipient or use for a purpose not named.",
            "Egmont Principles; FATF R.40 INR; P18",
            body=b.RequestConsent,
            guards=(g.CONSENT_UNDER_FIU, g.CONSENT_NEEDED),
            audit_kind="consent:requested",
        ),
        Transition(
            "grant_consent",
            ("CONSENT_REQUESTED",),
            "CONSENT_GRANTED",
            RQD,
            "The provider consents, possibly on conditions; the consent is on record for "
            "forwarding decisions.",
            "UNTOC art. 18(19); Egmont",
            body=b.GrantConsent,
            audit_kind="consent:granted",
        ),
        Transition(
            "refuse_consent",
            ("CONSENT_REQUESTED",),
            "CONSENT_REFUSED",
            RQD,
            "The provider refuses, with reasons, never on fiscal or secrecy grounds.",
            "Egmont Principles; FATF R.40 INR",
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
            "request_feedback",
            (START,),
            "FEEDBACK_REQUESTED",
            REQ,
            "The providing FIU asks what use was made of its information.",
            "Egmont Principles",
            body=b.RequestFeedback,
            guards=(g.FEEDBACK_UNDER_FIU,),
        ),
        Transition(
            "give_feedback",
            ("FEEDBACK_REQUESTED",),
            "FEEDBACK_GIVEN",
            RQD,
            "The receiving FIU gives feedback.",
            "Egmont Principles",
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
