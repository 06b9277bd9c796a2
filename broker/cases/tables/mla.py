"""The MLA request (UNTOC art. 18), from ``domain/MLA.md``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from broker.cases import bodies as b
from broker.cases import fold as f
from broker.cases import guards as g
from broker.cases.tables.parts import NODE, REQ, RETAINED, RQD, SYS
from broker.cases.workflow import SUPERVISORS, Prerequisite, Transition, Workflow

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

# The states a consultation may begin in, and return to when it ends without refusal (18(26)).
CONSULTING_FROM = frozenset({"IN_EXECUTION"})
CONSULT_FIRST = Prerequisite(
    "consult first: before refusing or postponing, the requested State consults the "
    "requesting State on whether assistance can be given on terms and conditions "
    "(open_consultation)",
    "UNTOC art. 18(26)",
)

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
            prerequisite=Prerequisite(
                "a request is transmitted once its central authority has vetted it "
                "(submit_for_vetting)",
                "UNTOC art. 18(13)",
            ),
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
            sources=("ASSESSMENT", "IN_EXECUTION"),
            target="CONSULTATION",
            side=RQD,
            summary=(
                "Before refusing or postponing, on costs or on confidentiality, the requested "
                "State consults the requesting State; during execution, on an intended "
                "postponement or on costs found then, and the case returns to execution when "
                "the consultation ends."
            ),
            citation="UNTOC art. 18(20), 18(25), 18(26), 18(28)",
            body=b.OpenConsultation,
            guards=(
                g.consultation_reasons(
                    "IN_EXECUTION",
                    frozenset({"postponement", "costs"}),
                    citation="UNTOC art. 18(25), 18(26), 18(28)",
                ),
            ),
            records=frozenset({"consultation"}),
            records_by_reason=CONSULTATION_RECORDS,
            remembers_origin=True,
            prerequisite=Prerequisite(
                "a consultation is opened while the request is assessed or executed",
                "UNTOC art. 18(26), 18(28)",
            ),
        ),
        Transition(
            event="offer_conditions",
            sources=("CONSULTATION",),
            target="CONDITIONS_OFFERED",
            side=RQD,
            summary="The requested State offers to assist on terms and conditions.",
            citation="UNTOC art. 18(26)",
            body=b.OfferConditions,
            fold_effect=f.conditions_offered,
            prerequisite=Prerequisite(
                "conditions are offered in a consultation (open_consultation first)",
                "UNTOC art. 18(26)",
            ),
        ),
        Transition(
            event="accept_conditions",
            sources=("CONDITIONS_OFFERED",),
            target="ACCEPTED",
            side=REQ,
            summary=(
                "The requesting State accepts the conditions; they bind it as use restrictions on "
                "everything the case returns. A consultation opened during execution returns "
                "to IN_EXECUTION."
            ),
            citation="UNTOC art. 18(26); P9",
            roles=SUPERVISORS,
            fold_effect=f.conditions_accepted,
            returns_to_origin=CONSULTING_FROM,
            prerequisite=Prerequisite(
                "conditions are accepted once the requested State has offered them "
                "(offer_conditions)",
                "UNTOC art. 18(26)",
            ),
        ),
        Transition(
            event="back_to_assessment",
            sources=("CONSULTATION", "CONDITIONS_OFFERED"),
            target="ASSESSMENT",
            side=RQD,
            summary=(
                "The consultation ends without refusal or conditions: back to ASSESSMENT, or "
                "to IN_EXECUTION where the consultation began."
            ),
            citation="UNTOC art. 18(26)",
            body=b.BackToAssessment,
            fold_effect=f.offer_dropped,
            returns_to_origin=CONSULTING_FROM,
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
            prerequisite=Prerequisite(
                "evidence is delivered during execution, once the request is accepted and "
                "its execution assigned (accept, assign_execution)",
                "UNTOC art. 18(17)",
            ),
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
            fold_effect=f.review_set,
            prerequisite=Prerequisite(
                "consult first: execution is postponed only because it interferes with an "
                "ongoing investigation, prosecution or proceeding, after consulting the "
                "requesting State during execution (open_consultation)",
                "UNTOC art. 18(25), 18(26)",
            ),
        ),
        Transition(
            event="resume",
            sources=("POSTPONED",),
            target="IN_EXECUTION",
            side=RQD,
            summary="Execution resumes.",
            citation="UNTOC art. 18(25)",
            fold_effect=f.review_cleared,
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
            prerequisite=Prerequisite(
                "a request is completed during execution, once it is accepted and its "
                "execution assigned (accept, assign_execution)",
                "UNTOC art. 18(17), 18(24)",
            ),
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
            prerequisite=CONSULT_FIRST,
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
            fold_effect=f.assured,
        ),
    ),
    state_notes=MappingProxyType(
        {
            "INFO_REQUESTED": "clock paused",
            "POSTPONED": "review date set",
        }
    ),
)
