"""The transition tables: their invariants, and what is derived from them (description,
diagram, paths)."""

from __future__ import annotations

import orjson
import pytest

from broker.cases.bodies import NoBody
from broker.cases.diagram import mermaid
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import START, Side, Transition, Workflow
from policies.vocabulary import CASE_EVENTS, MESSAGE_TYPES

WORKFLOW_NAMES = list(WORKFLOWS)
# Events of the tables that no pack matches on (so the vocabulary need not list them). A row
# with a ``policy_event`` is seen by the packs under that name (``refuse_national`` is the
# ``refuse`` it is, UNTOC art. 16(10)).
OWN_EVENTS = {"record_assurance"}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_state_and_every_final_is_reachable(name: str) -> None:
    wf = WORKFLOWS[name]
    assert wf.reachable() == set(wf.states)
    for final in wf.finals:
        path = wf.path_to(final)
        state = path[0][0] if path else wf.initial
        for source, t in path:
            assert source == state
            state = t.target_from(source) if source != START else str(t.target)
        assert state == final


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_final_states_have_no_way_out_but_retention_expiry(name: str) -> None:
    wf = WORKFLOWS[name]
    for final in wf.finals:
        leaving = {t.event for t in wf.from_state(final) if t.target not in (None, final)}
        assert leaving <= {"expire_retention"}, (final, leaving)
    for t in wf.transitions:
        if t.event == "expire_retention":
            assert t.side is Side.SYSTEM
            assert set(t.sources) <= wf.finals


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_names_are_those_the_policy_packs_use(name: str) -> None:
    wf = WORKFLOWS[name]
    for t in wf.transitions:
        assert (t.policy_event or t.event) in CASE_EVENTS | OWN_EVENTS, t.event
        for case_type in wf.case_types:
            assert wf.message_type(t, case_type) in MESSAGE_TYPES
        assert t.summary
        assert t.citation
        assert t.roles
        for g in t.guards:
            assert g.citation
            assert g.text


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_description_is_json_and_complete(name: str) -> None:
    wf = WORKFLOWS[name]
    data = orjson.loads(orjson.dumps(wf.describe()))
    assert [t["event"] for t in data["transitions"]] == [t.event for t in wf.transitions]
    transmit = [t for t in data["transitions"] if t["body_schema"]["type"] == "object"]
    assert len(transmit) == len(wf.transitions)


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_diagram_draws_every_transition(name: str) -> None:
    wf = WORKFLOWS[name]
    text = mermaid(wf, current=wf.states[0])
    assert text.startswith("stateDiagram-v2\n")
    for t in wf.transitions:
        if t.target is None:
            assert t.event in text
            continue
        for source in t.sources:
            assert f"{source} --> {t.target} : {t.event} (" in text
    for final in wf.finals:
        assert f"{final} --> [*]" in text or any(
            t.target not in (None, final) for t in wf.from_state(final)
        )
    assert f"class {wf.states[0]} current" in text
    assert "class" not in mermaid(wf).split("classDef")[0].split("\n")[-1]


def test_the_mla_table_follows_mla_md() -> None:
    mla = WORKFLOWS["mla.request"]
    row = mla.transition("CA_VETTING", "transmit")
    assert row is not None
    assert (row.target, row.side, row.roles) == (
        "TRANSMITTED",
        Side.REQUESTING,
        frozenset({"supervisor"}),
    )
    assert [g.id for g in row.guards] == ["four_eyes"]
    refuse = mla.transition("CONSULTATION", "refuse")
    assert refuse is not None
    assert refuse.target == "REFUSED"
    assert mla.transition("ASSESSMENT", "refuse") is None  # consultation first, 18(26)
    info = mla.transition("ASSESSMENT", "request_information")
    assert info is not None
    assert info.pauses_clock
    withdraw = mla.transition("IN_EXECUTION", "withdraw")
    assert withdraw is not None
    assert withdraw.target == "WITHDRAWN"
    assert mla.transition("CLOSED", "exculpatory_notice") is not None  # speciality outlives


def test_a_malformed_table_is_refused() -> None:
    def make(*transitions: Transition, initial: str = "A") -> Workflow:
        return Workflow(
            name="x",
            title="x",
            citation="x",
            case_types=frozenset({"mla"}),
            states=("A", "B"),
            finals=frozenset({"B"}),
            initial=initial,
            transitions=transitions,
            message_types={"mla": "mla.event"},
        )

    go = Transition(
        event="accept",
        sources=("A",),
        target="B",
        side=Side.REQUESTED,
        summary="go",
        citation="x",
        body=NoBody,
    )
    assert make(go).reachable() == {"A", "B"}
    with pytest.raises(ValueError, match="unknown state"):
        make(
            Transition(
                event="accept", sources=("Z",), target="B", side=Side.REQUESTED, summary="go"
            )
        )
    with pytest.raises(ValueError, match="leads to unknown state"):
        make(
            Transition(
                event="accept", sources=("A",), target="Z", side=Side.REQUESTED, summary="go"
            )
        )
    with pytest.raises(ValueError, match="two transitions"):
        make(go, go)
    with pytest.raises(ValueError, match="unknown initial"):
        make(go, initial="Q")
    with pytest.raises(ValueError, match="not reachable"):
        make(go).path_to("C")
