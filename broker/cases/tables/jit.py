"""The joint investigation team (UNTOC art. 19) and rule P21.

A team is a case opened by one member with another: its request is the agreement, with the
agreement reference, the parties (the member participants, kept in the case's terms as
``members``) and the expiry (kept as ``expiry``). Opening the team is its sharing event and
is decided by the policy packs like every exchange of the team: rule P21.agreement refuses a
team without its reference, parties or expiry; P21.member-sender and P21.member-recipient
refuse a team whose opener or counterpart is not one of its parties, and every exchange to or
from a non-member (the members are the policy context's ``case_parties``). So the case is
shared, and read, only by members. An ``exchange`` goes to the member its body names (a
member beyond the two parties receives it in its inbox).

At the expiry the node's timers move the team to ``EXPIRED`` (``expire_team``); an exchange
attempted after that is refused, by the guard ``team_in_term`` while the timers have not yet
run, and by rule P21.expired once the team is ``EXPIRED`` (the table lets the attempt reach
the policy so that its refusal is decided and logged with the rule's id).
"""

from __future__ import annotations

from types import MappingProxyType

from broker.cases import bodies as b
from broker.cases import guards as g
from broker.cases.tables.parts import NODE, REQ, SYS
from broker.cases.workflow import Transition, Workflow

JIT_STATES = ("DRAFT", "ACTIVE", "CLOSED", "EXPIRED", "WITHDRAWN", "ERASED")
JIT_FINALS = frozenset({"CLOSED", "EXPIRED", "WITHDRAWN", "ERASED"})

JIT = Workflow(
    name="jit.team",
    title="Joint investigation team",
    citation="UNTOC art. 19",
    case_types=frozenset({"jit"}),
    states=JIT_STATES,
    finals=JIT_FINALS,
    initial="DRAFT",
    sharing_event="open_team",
    private_states=frozenset({"DRAFT"}),
    message_types=MappingProxyType({"jit": "jit.event"}),
    request_model=b.JitAgreement,
    transitions=(
        Transition(
            event="open_team",
            sources=("DRAFT",),
            target="ACTIVE",
            side=REQ,
            summary=("A member opens the team under its agreement: reference, parties and expiry."),
            citation="UNTOC art. 19; P21",
            body=b.OpenTeam,
            guards=(g.EXPIRY_AHEAD,),
            carries_request=True,
            amends_request=True,
        ),
        Transition(
            event="exchange",
            sources=("ACTIVE",),
            target=None,
            side=REQ,
            either_side=True,
            summary=(
                "A member sends information to another member of the team; only members send "
                "and receive, and only until the expiry."
            ),
            citation="UNTOC art. 19; P21",
            body=b.Exchange,
            guards=(g.TEAM_IN_TERM,),
            message_type="jit.message",
            addressed=True,
        ),
        Transition(
            event="exchange",
            sources=("EXPIRED",),
            target=None,
            side=REQ,
            either_side=True,
            summary=(
                "An exchange attempted after the expiry reaches the policy, which refuses it; "
                "the refusal is logged with its rule."
            ),
            citation="UNTOC art. 19; P21",
            body=b.Exchange,
            message_type="jit.message",
            addressed=True,
        ),
        Transition(
            event="extend_team",
            sources=("ACTIVE",),
            target=None,
            side=REQ,
            summary="The members extend the agreement: the team's expiry moves later.",
            citation="UNTOC art. 19",
            body=b.ExtendTeam,
            guards=(g.TEAM_IN_TERM, g.EXTENDS_TERM),
            sets_terms=frozenset({"expiry"}),
        ),
        Transition(
            event="close_team",
            sources=("ACTIVE",),
            target="CLOSED",
            side=REQ,
            summary="The team's work is done: it is closed before its expiry.",
            citation="UNTOC art. 19",
            body=b.CloseTeam,
        ),
        Transition(
            event="expire_team",
            sources=("ACTIVE",),
            target="EXPIRED",
            side=SYS,
            summary="At the agreement's expiry the node moves the team to EXPIRED.",
            citation="UNTOC art. 19; P21",
            roles=NODE,
            fires_at_term="expiry",
        ),
        Transition(
            event="withdraw",
            sources=("DRAFT",),
            target="WITHDRAWN",
            side=REQ,
            summary="The draft team is abandoned.",
            citation="UNTOC art. 19",
            body=b.Withdraw,
        ),
        Transition(
            event="expire_retention",
            sources=("CLOSED", "EXPIRED", "WITHDRAWN"),
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
    state_notes=MappingProxyType({"EXPIRED": "exchanges refused (P21.expired)"}),
)
