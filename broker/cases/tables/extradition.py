"""The extradition request (UNTOC art. 16), from ``domain/MLA.md`` and rule P20.

The requesting State's central authority submits the request (``submit``: the packs' MLA
transmission rules, on ``transmit``, are not the law of extradition); the requested State
assesses it, may take the person sought into provisional custody when the request is urgent
(16(9)),
consults before it refuses (16(16), rule P20.consultation), never refuses on fiscal matters
alone (16(15), rule P20.fiscal-alone), and grants and surrenders, or refuses. A refusal on the
ground that the person is its national (16(10)) is ``refuse_national``: the policy packs see
it as the ``refuse`` it is (rule P20.national), and instead of closing the case it opens the
domestic prosecution item, which the case tracks in its own states until the competent
authorities' outcome is reported back: ``PROSECUTION_DUE`` (submit the case "without undue
delay"), ``PROSECUTION_SUBMITTED``, ``PROSECUTION_REPORTED``. Retention (P17) runs only from
a final state, so the case is never erased while that item is open.
"""

from __future__ import annotations

from types import MappingProxyType

from broker.cases import bodies as b
from broker.cases import fold as f
from broker.cases import guards as g
from broker.cases.tables.parts import NODE, REQ, RQD, SYS
from broker.cases.workflow import SUPERVISORS, Transition, Workflow

EXTRADITION_STATES = (
    "DRAFT",
    "TRANSMITTED",
    "RECEIVED",
    "ASSESSMENT",
    "CONSULTATION",
    "ACCEPTED",
    "SURRENDERED",
    "REFUSED",
    "PROSECUTION_DUE",
    "PROSECUTION_SUBMITTED",
    "PROSECUTION_REPORTED",
    "WITHDRAWN",
    "ERASED",
)
EXTRADITION_FINALS = frozenset(
    {"SURRENDERED", "REFUSED", "PROSECUTION_REPORTED", "WITHDRAWN", "ERASED"}
)
# The request pending: what the requesting State may still withdraw.
PENDING = ("DRAFT", "TRANSMITTED", "RECEIVED", "ASSESSMENT", "CONSULTATION", "ACCEPTED")
SHARED_PENDING = PENDING[1:]
# Where the decision is taken: after assessment, with or without a consultation on record
# (rule P20.consultation refuses a refusal that has none).
DECIDING = ("ASSESSMENT", "CONSULTATION")
PROSECUTION_OPEN = ("PROSECUTION_DUE", "PROSECUTION_SUBMITTED")
EXTRADITION_RETAINED = ("SURRENDERED", "REFUSED", "PROSECUTION_REPORTED", "WITHDRAWN")

EXTRADITION = Workflow(
    name="extradition.request",
    title="Extradition request",
    citation="UNTOC art. 16",
    case_types=frozenset({"extradition"}),
    states=EXTRADITION_STATES,
    finals=EXTRADITION_FINALS,
    initial="DRAFT",
    sharing_event="submit",
    private_states=frozenset({"DRAFT"}),
    message_types=MappingProxyType({"extradition": "extradition.event"}),
    request_model=b.ExtraditionRequest,
    transitions=(
        Transition(
            event="submit",
            sources=("DRAFT",),
            target="TRANSMITTED",
            side=REQ,
            summary=(
                "The requesting central authority submits the extradition request to the "
                "requested State."
            ),
            citation="UNTOC art. 16(1), 16(8)",
            roles=SUPERVISORS,
            body=b.TransmitExtradition,
            message_type="extradition.request",
            carries_request=True,
            amends_request=True,
        ),
        Transition(
            event="acknowledge",
            sources=("TRANSMITTED",),
            target="RECEIVED",
            side=RQD,
            summary="The requested State acknowledges receipt of the extradition request.",
            citation="UNTOC art. 16(8)",
            on_receipt=True,
        ),
        Transition(
            event="start_assessment",
            sources=("RECEIVED",),
            target="ASSESSMENT",
            side=RQD,
            summary="The requested State starts assessing the extradition request.",
            citation="UNTOC art. 16(7), 16(8)",
        ),
        Transition(
            event="open_consultation",
            sources=("ASSESSMENT",),
            target="CONSULTATION",
            side=RQD,
            summary=(
                "Before refusing, the requested State consults the requesting State and lets it "
                "present its opinions and information."
            ),
            citation="UNTOC art. 16(16); P20",
            body=b.ConsultExtradition,
            records=frozenset({"consultation"}),
        ),
        Transition(
            event="back_to_assessment",
            sources=("CONSULTATION",),
            target="ASSESSMENT",
            side=RQD,
            summary="The consultation ends; the assessment goes on.",
            citation="UNTOC art. 16(16)",
            body=b.BackToAssessment,
        ),
        Transition(
            event="accept",
            sources=DECIDING,
            target="ACCEPTED",
            side=RQD,
            summary="The requested State grants extradition.",
            citation="UNTOC art. 16(7)",
            roles=SUPERVISORS,
        ),
        Transition(
            event="surrender",
            sources=("ACCEPTED",),
            target="SURRENDERED",
            side=RQD,
            summary="The person sought is surrendered to the requesting State.",
            citation="UNTOC art. 16(7); P22",
            body=b.Surrender,
        ),
        Transition(
            event="refuse",
            sources=DECIDING,
            target="REFUSED",
            side=RQD,
            summary=(
                "The requested State refuses, after consultation and never on fiscal matters alone."
            ),
            citation="UNTOC art. 16(15), 16(16); P20",
            roles=SUPERVISORS,
            body=b.Refuse,
            guards=(g.NOT_NATIONAL,),
        ),
        Transition(
            event="refuse_national",
            sources=DECIDING,
            target="PROSECUTION_DUE",
            side=RQD,
            summary=(
                "The requested State refuses to extradite its national; it must submit the case "
                "to its own authorities for prosecution without undue delay."
            ),
            citation="UNTOC art. 16(10); P20",
            roles=SUPERVISORS,
            body=b.Refuse,
            guards=(g.NATIONAL_GROUND,),
            policy_event="refuse",
        ),
        Transition(
            event="submit_for_prosecution",
            sources=("PROSECUTION_DUE",),
            target="PROSECUTION_SUBMITTED",
            side=RQD,
            summary=(
                "The requested State submits the case to its competent authorities for prosecution."
            ),
            citation="UNTOC art. 16(10)",
            body=b.SubmitForProsecution,
        ),
        Transition(
            event="report_prosecution",
            sources=("PROSECUTION_SUBMITTED",),
            target="PROSECUTION_REPORTED",
            side=RQD,
            summary="The requested State reports the outcome of the domestic prosecution.",
            citation="UNTOC art. 16(10)",
            body=b.ReportProsecution,
        ),
        Transition(
            event="withdraw",
            sources=PENDING,
            target="WITHDRAWN",
            side=REQ,
            summary="The requesting State withdraws the extradition request.",
            citation="UNTOC art. 16",
            body=b.Withdraw,
        ),
        Transition(
            event="expire_retention",
            sources=EXTRADITION_RETAINED,
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
            event="request_provisional_arrest",
            sources=SHARED_PENDING[:-1],
            target=None,
            side=REQ,
            summary=(
                "The requesting State asks that the person sought be taken into custody, the "
                "request being urgent."
            ),
            citation="UNTOC art. 16(9)",
            body=b.RequestProvisionalArrest,
            guards=(g.URGENT_ARREST,),
            records=frozenset({"provisional_arrest_requested"}),
        ),
        Transition(
            event="provisional_arrest",
            sources=SHARED_PENDING,
            target=None,
            side=RQD,
            summary="The requested State records that the person sought is in custody.",
            citation="UNTOC art. 16(9)",
            body=b.ProvisionalArrest,
            guards=(g.ARREST_ASKED,),
            records=frozenset({"provisional_arrest"}),
        ),
        Transition(
            event="progress_query",
            sources=(*SHARED_PENDING, *PROSECUTION_OPEN),
            target=None,
            side=REQ,
            summary=(
                "The requesting State asks for progress, of the request or of the domestic "
                "prosecution; the node answers from the case state."
            ),
            citation="UNTOC art. 16(10), 16(8)",
            triggers_progress_reply=True,
        ),
        Transition(
            event="record_assurance",
            sources=PENDING,
            target=None,
            side=REQ,
            summary=(
                "An assurance is put on record (for example that the death penalty will not be "
                "sought): surrender to a flagged State needs it."
            ),
            citation="UNTOC art. 16(14); P22",
            body=b.RecordAssurance,
            fold_effect=f.assured,
        ),
    ),
    state_notes=MappingProxyType(
        {
            "PROSECUTION_DUE": "domestic prosecution owed (16(10))",
            "PROSECUTION_SUBMITTED": "before the competent authorities",
        }
    ),
)
