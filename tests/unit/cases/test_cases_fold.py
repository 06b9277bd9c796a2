"""The fold: a case's state is its events folded; any walk the table allows folds into a
projection that survives its JSON form; a walk it does not allow is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.cases.fold import (
    Applied,
    HistoryError,
    projection_from,
    projection_json,
    replay,
    start,
    step,
)
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import START

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
MLA = WORKFLOWS["mla.request"]


def walk(name: str, choices: list[int]) -> list[Applied]:
    """Events of a walk through the table: at each step take the choice-th allowed event."""
    wf = WORKFLOWS[name]
    state = wf.initial
    origin: str | None = None
    events = []
    at = T0
    options = wf.opening_events if state == START else list(wf.from_state(state))
    for i, choice in enumerate(choices):
        options = list(wf.opening_events) if state == START else list(wf.from_state(state))
        if not options:
            break
        t = options[choice % len(options)]
        at = at + dt.timedelta(hours=i + 1)
        details: dict[str, object] = {}
        if t.event == "offer_conditions":
            details = {"conditions": [f"condition {i}"]}
        elif t.event == "respond":
            details = {"kind": "interim"}
        elif t.event == "postpone":
            details = {"review_date": (at + dt.timedelta(days=9)).isoformat()}
        elif t.event == "open_consultation":
            details = {"reason": "costs"}
        events.append(Applied(t.event, at, details))
        state, origin = t.after(state, origin)
    return events


@settings(max_examples=300)
@given(
    name=st.sampled_from(list(WORKFLOWS)),
    choices=st.lists(st.integers(min_value=0, max_value=40), max_size=30),
)
def test_any_allowed_walk_folds_and_round_trips(name: str, choices: list[int]) -> None:
    wf = WORKFLOWS[name]
    events = walk(name, choices)
    p = replay(wf, events)
    assert p.seq == len(events)
    assert p.state in (*wf.states, START)
    if events:
        assert p.state in wf.states
    assert projection_from(p.state, p.seq, projection_json(p)) == p
    # A consultation is open exactly in the consultation states, and began where the table
    # lets one begin; its end went back there or to the row's target, never elsewhere.
    # (Only in a table whose consultations remember where they began: MLA; an extradition
    # consultation always returns to its assessment.)
    remembers = any(t.remembers_origin for t in wf.transitions)
    if remembers and p.state in ("CONSULTATION", "CONDITIONS_OFFERED"):
        assert p.consulted_from in ("ASSESSMENT", "IN_EXECUTION")
    else:
        assert p.consulted_from is None or p.state in wf.finals
    assert set(p.conditions) <= {c for e in events for c in e.details.get("conditions", [])}


def test_consultation_conditions_and_pauses() -> None:
    hours = iter(range(1, 100))

    def at() -> dt.datetime:
        return T0 + dt.timedelta(hours=next(hours))

    history = [
        Applied("submit_for_vetting", at()),
        Applied("transmit", at()),
        Applied("acknowledge", at()),
        Applied("start_assessment", at()),
        Applied("request_information", at()),
        Applied("provide_information", at()),
        Applied("open_consultation", at(), {"reason": "confidentiality"}),
        Applied("offer_conditions", at(), {"conditions": ["only RG 1/2026"]}),
        Applied("accept_conditions", at()),
    ]
    p = replay(MLA, history)
    assert p.state == "ACCEPTED"
    assert p.conditions == ("only RG 1/2026",)
    assert p.offered_conditions == ()
    assert p.records == {"consultation", "confidentiality_cannot_be_kept", "confidentiality_notice"}
    assert p.shared_at == history[1].at
    assert p.pauses == ((history[4].at, history[5].at),)
    assert p.paused_since is None


EXECUTION = [
    Applied("submit_for_vetting", T0),
    Applied("transmit", T0),
    Applied("acknowledge", T0),
    Applied("start_assessment", T0),
    Applied("accept", T0),
    Applied("assign_execution", T0),
]


@pytest.mark.parametrize(
    ("ending", "state"),
    [
        ([Applied("back_to_assessment", T0)], "IN_EXECUTION"),
        ([Applied("offer_conditions", T0, {"conditions": ["costs shared"]})], "CONDITIONS_OFFERED"),
        (
            [
                Applied("offer_conditions", T0, {"conditions": ["costs shared"]}),
                Applied("accept_conditions", T0),
            ],
            "IN_EXECUTION",
        ),
        (
            [
                Applied("offer_conditions", T0, {"conditions": ["costs shared"]}),
                Applied("back_to_assessment", T0),
            ],
            "IN_EXECUTION",
        ),
    ],
)
def test_a_consultation_during_execution_returns_to_execution(
    ending: list[Applied], state: str
) -> None:
    """UNTOC art. 18(25), 18(26), 18(28): the requested State consults during execution on a
    postponement or on costs found then; the case goes back to IN_EXECUTION afterwards."""
    opened = replay(MLA, [*EXECUTION, Applied("open_consultation", T0, {"reason": "costs"})])
    assert (opened.state, opened.consulted_from) == ("CONSULTATION", "IN_EXECUTION")
    assert {"consultation", "cost_consultation"} <= opened.records
    p = replay(MLA, [*EXECUTION, Applied("open_consultation", T0, {"reason": "costs"}), *ending])
    assert p.state == state
    assert projection_from(p.state, p.seq, projection_json(p)) == p
    if state == "IN_EXECUTION":
        assert p.consulted_from is None
        # back in execution, with the consultation on record, it may be postponed (18(25))
        assert MLA.transition(p.state, "postpone") is not None


def test_a_consultation_during_assessment_still_returns_to_assessment() -> None:
    history = [*EXECUTION[:4], Applied("open_consultation", T0, {"reason": "costs"})]
    p = replay(MLA, [*history, Applied("back_to_assessment", T0)])
    assert (p.state, p.consulted_from) == ("ASSESSMENT", None)
    p = replay(
        MLA,
        [
            *history,
            Applied("offer_conditions", T0, {"conditions": ["c"]}),
            Applied("accept_conditions", T0),
        ],
    )
    assert (p.state, p.conditions) == ("ACCEPTED", ("c",))


def test_a_notice_takes_a_number_and_changes_nothing() -> None:
    p = step(MLA, start(MLA), Applied("submit_for_vetting", T0))
    q = step(MLA, p, Applied("reminder", T0, {"notice": "reminder", "key": "x"}))
    assert (q.state, q.seq, q.records) == (p.state, p.seq + 1, p.records)


def test_an_event_out_of_place_is_refused() -> None:
    with pytest.raises(HistoryError, match="complete is not allowed in DRAFT"):
        replay(MLA, [Applied("complete", T0)])
