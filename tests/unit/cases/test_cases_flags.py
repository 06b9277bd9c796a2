"""The behaviour the tables declare on their rows: each flag is set where the law says, and a
workflow defined only as a table gets the behaviour without a line of service code."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType
from typing import Any

import pytest

from broker.cases import fold, guards
from broker.cases.fold import Applied, Projection, replay
from broker.cases.models import Case, CaseEvent
from broker.cases.service import Loaded, allowed_events
from broker.cases.tables import CONSULTATION_RECORDS, WORKFLOWS
from broker.cases.workflow import Side, Transition, Workflow
from broker.core.context import Caller

AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

# (flag, the rows it is set on, where the law says so)
FLAGS = [
    (
        "drafting",
        {("mla.request", "submit_for_vetting")},
        "UNTOC art. 18(13); P1: who submits for vetting may not transmit (four eyes)",
    ),
    (
        "carries_request",
        {
            ("mla.request", "submit_for_vetting"),
            ("mla.request", "transmit"),
            ("fiu.request", "submit"),
            ("fiu.disclosure", "submit"),
            ("extradition.request", "submit"),
            ("jit.team", "open_team"),
            ("intel.request", "submit"),
        },
        "UNTOC art. 18(15): the request goes to vetting and is transmitted; FATF R.40 INR; "
        "UNTOC art. 16(1): the extradition request; art. 19: the team's agreement; "
        "Directive (EU) 2023/977 art. 4",
    ),
    (
        "request_as_stored",
        {("mla.request", "transmit")},
        "UNTOC art. 18(13)-(15): the central authority transmits the request it vetted",
    ),
    (
        "amends_request",
        {
            ("mla.request", "submit_for_vetting"),
            ("fiu.request", "submit"),
            ("fiu.disclosure", "submit"),
            ("extradition.request", "submit"),
            ("jit.team", "open_team"),
            ("intel.request", "submit"),
        },
        "UNTOC art. 18(15): the drafter amends the request until it is submitted",
    ),
    (
        "widens_terms",
        {("fiu.request", "respond"), ("fiu.disclosure", "submit"), ("intel.request", "respond")},
        "Egmont Principles; FATF R.40 INR: the provider names recipients and purposes",
    ),
    (
        "permits_named_recipients",
        {("fiu.request", "respond")},
        "Egmont; P18: the response may go on to the recipients the request named",
    ),
    (
        "grants_parent_consent",
        {("consent", "grant_consent")},
        "UNTOC art. 18(19); Egmont Principles; P18",
    ),
    (
        "triggers_progress_reply",
        {
            ("mla.request", "progress_query"),
            ("fiu.request", "progress_query"),
            ("extradition.request", "progress_query"),
            ("intel.request", "progress_query"),
        },
        "UNTOC art. 18(24): information on the status and progress of the request",
    ),
    (
        "erases",
        {
            ("mla.request", "expire_retention"),
            ("fiu.request", "expire_retention"),
            ("fiu.disclosure", "expire_retention"),
            ("extradition.request", "expire_retention"),
            ("jit.team", "expire_retention"),
            ("intel.request", "expire_retention"),
        },
        "LED art. 5; P17: time limits for erasure",
    ),
    (
        "on_receipt",
        {("mla.request", "acknowledge"), ("extradition.request", "acknowledge")},
        "MLA.md: acknowledged by CA-Q, or by the node on a signed receipt",
    ),
    (
        "policy_event",
        {("extradition.request", "refuse_national")},
        "UNTOC art. 16(10): refusing to extradite a national is a refusal (P20)",
    ),
    (
        "either_side",
        {("jit.team", "exchange")},
        "UNTOC art. 19: every member of the team exchanges",
    ),
    (
        "addressed",
        {("jit.team", "exchange")},
        "UNTOC art. 19; P21: an exchange goes to the member it names",
    ),
    (
        "fires_at_term",
        {("jit.team", "expire_team")},
        "UNTOC art. 19; P21: the team ends at its agreement's expiry",
    ),
    (
        "sets_terms",
        {("jit.team", "extend_team")},
        "UNTOC art. 19: an extension of the agreement moves its expiry",
    ),
]


@pytest.mark.parametrize(("flag", "rows", "law"), FLAGS, ids=[f for f, _, _ in FLAGS])
def test_each_flag_is_set_where_the_law_says(
    flag: str, rows: set[tuple[str, str]], law: str
) -> None:
    found = {
        (wf.name, t.event) for wf in WORKFLOWS.values() for t in wf.transitions if getattr(t, flag)
    }
    assert found == rows, law


def test_consultation_records_by_reason_are_on_the_consultation_row() -> None:
    # UNTOC art. 18(20) (confidentiality), 18(28) (extraordinary costs)
    found = {
        (wf.name, t.event): t.records_by_reason
        for wf in WORKFLOWS.values()
        for t in wf.transitions
        if t.records_by_reason
    }
    assert found == {("mla.request", "open_consultation"): CONSULTATION_RECORDS}


def test_private_states_are_drafting_and_vetting() -> None:
    # UNTOC art. 18(13), 18(15): the request is the requesting State's own until transmitted.
    private = {name: wf.private_states for name, wf in WORKFLOWS.items()}
    assert private == {
        "mla.request": {"DRAFT", "CA_VETTING"},
        "fiu.request": {"DRAFT"},
        "fiu.disclosure": {"DRAFT"},
        "intel.request": {"DRAFT"},
        "consent": set(),
        "feedback": set(),
        # UNTOC art. 16, art. 19: the draft request or agreement, until sent
        "extradition.request": {"DRAFT"},
        "jit.team": {"DRAFT"},
    }


def test_guard_flags() -> None:
    assert guards.FOUR_EYES.excludes_drafters
    assert all(
        g.on_parent
        for g in (guards.CONSENT_UNDER_MLA, guards.CONSENT_UNDER_FIU, guards.FEEDBACK_UNDER_FIU)
    )
    flagged = {
        g.id
        for wf in WORKFLOWS.values()
        for t in wf.transitions
        for g in t.guards
        if g.excludes_drafters or g.on_parent
    }
    assert flagged == {"four_eyes", "parent_case"}


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_the_flags_agree_with_the_rows(name: str) -> None:
    wf = WORKFLOWS[name]
    for t in wf.transitions:
        if t.amends_request or t.request_as_stored:
            assert t.carries_request, t.event
        if t.drafting:
            assert t.side is Side.REQUESTING, t.event
            assert set(t.sources) <= wf.private_states, t.event
        if t.erases:
            assert t.side is Side.SYSTEM, t.event
            assert t.target in wf.finals, t.event
        if t.on_receipt:
            assert t.side is Side.REQUESTED, t.event
            assert not t.side_event, t.event
        if t.triggers_progress_reply:
            assert t.side_event, t.event
        if t.grants_parent_consent:
            assert wf.parents, t.event
            assert t.target in wf.finals, t.event
    assert wf.sharing_event is None or wf.private_states, name
    if wf.sharing_event is not None:
        sharing = [t for t in wf.transitions if t.event == wf.sharing_event]
        assert all(set(t.sources) <= wf.private_states for t in sharing)
        assert all(t.target not in wf.private_states for t in sharing)


def _row(
    event: str, sources: tuple[str, ...], target: str | None, side: Side, **kw: Any
) -> Transition:
    return Transition(
        event=event,
        sources=sources,
        target=target,
        side=side,
        summary=event,
        **kw,
    )


# A made-up workflow, a table and nothing else.
EXTRADITION = Workflow(
    name="extradition.request",
    title="Extradition request",
    citation="UNTOC art. 16",
    case_types=frozenset({"mla"}),
    states=("DRAFT", "REVIEW", "SENT", "SEEN", "HEARING", "DONE", "GONE"),
    finals=frozenset({"DONE", "GONE"}),
    initial="DRAFT",
    sharing_event="send",
    private_states=frozenset({"DRAFT", "REVIEW"}),
    message_types=MappingProxyType({"mla": "mla.event"}),
    transitions=(
        _row("prepare", ("DRAFT",), "REVIEW", Side.REQUESTING, drafting=True),
        _row(
            "send",
            ("REVIEW",),
            "SENT",
            Side.REQUESTING,
            guards=(guards.FOUR_EYES,),
            carries_request=True,
        ),
        _row("receive", ("SENT",), "SEEN", Side.REQUESTED, on_receipt=True),
        _row(
            "hear",
            ("SEEN",),
            "HEARING",
            Side.REQUESTED,
            records_by_reason=MappingProxyType({"surrender": frozenset({"surrender_hearing"})}),
        ),
        _row("decide", ("HEARING",), "DONE", Side.REQUESTED),
        _row(
            "status",
            ("SENT", "SEEN", "HEARING"),
            None,
            Side.REQUESTING,
            triggers_progress_reply=True,
        ),
        _row("shred", ("DONE",), "GONE", Side.SYSTEM, roles=frozenset({"system"}), erases=True),
    ),
)


def _event(seq: int, event: str, from_state: str, actor: str | None) -> CaseEvent:
    return CaseEvent(
        event_id=f"e{seq}",
        seq=seq,
        event=event,
        from_state=from_state,
        actor_account=actor,
        at=AT,
        details={},
    )


def test_a_new_workflow_is_a_table_and_nothing_else() -> None:
    wf = EXTRADITION
    assert wf.erased_states == {"GONE"}
    erasing = wf.erasing_from("DONE")
    assert erasing is not None
    assert erasing.event == "shred"
    assert wf.erasing_from("HEARING") is None
    receipt = wf.on_receipt_from("SENT")
    assert receipt is not None
    assert receipt.event == "receive"
    assert wf.on_receipt_from("SEEN") is None
    # the requested side sees the sharing event, never what was fired before it
    assert not wf.visible_to_requested("DRAFT", "prepare")
    assert wf.visible_to_requested("REVIEW", "send")
    assert wf.visible_to_requested("SENT", "receive")
    # the records of a row, by the reason of its body
    p = replay(
        wf,
        [
            Applied("prepare", AT),
            Applied("send", AT),
            Applied("receive", AT),
            Applied("hear", AT, {"reason": "surrender"}),
        ],
    )
    assert p.state == "HEARING"
    assert "surrender_hearing" in p.records
    assert p.shared_at == AT


def test_a_new_workflows_drafters_are_kept_from_its_four_eyes_event() -> None:
    case = Case(
        id="c",
        workflow=EXTRADITION.name,
        opened_by="opener",
        requesting_id="p1",
        requested_id="p2",
        state="REVIEW",
        shared_at=None,
        confidential=False,
    )
    loaded = Loaded(
        case,
        EXTRADITION,
        Projection(state="REVIEW", seq=1),
        [_event(1, "prepare", "DRAFT", "drafter")],
        [],
        None,
    )
    assert loaded.drafters == {"opener", "drafter"}

    def caller(account: str) -> Caller:
        return Caller(
            account_id=account, participant_id="p1", roles=frozenset({"supervisor"}), kind="person"
        )

    assert [t.event for t in allowed_events(loaded, caller("drafter"))] == []
    assert [t.event for t in allowed_events(loaded, caller("opener"))] == []
    assert [t.event for t in allowed_events(loaded, caller("reviewer"))] == ["send"]


def test_fold_effects_are_on_their_rows() -> None:
    found = {
        (wf.name, t.event): t.fold_effect
        for wf in WORKFLOWS.values()
        for t in wf.transitions
        if t.fold_effect is not None
    }
    assert found == {
        # UNTOC art. 18(26): conditions offered, accepted (they bind as restrictions, P9), or
        # dropped when the consultation ends without them
        ("mla.request", "offer_conditions"): fold.conditions_offered,
        ("mla.request", "accept_conditions"): fold.conditions_accepted,
        ("mla.request", "back_to_assessment"): fold.offer_dropped,
        # UNTOC art. 18(25): a postponement sets a review date, resuming clears it
        ("mla.request", "postpone"): fold.review_set,
        ("mla.request", "resume"): fold.review_cleared,
        # UNTOC art. 16(14); P22
        ("mla.request", "record_assurance"): fold.assured,
        # Egmont Principles: interim, partial, full or negative
        ("fiu.request", "respond"): fold.response_given,
        # Directive (EU) 2023/977 art. 5(1): a response, then further ones after an interim one
        ("intel.request", "respond"): fold.response_given,
        # UNTOC art. 18(19); Egmont Principles
        ("consent", "grant_consent"): fold.consent_conditions_set,
        # UNTOC art. 16(14); P22: surrender to a flagged State needs the assurance
        ("extradition.request", "record_assurance"): fold.assured,
    }
