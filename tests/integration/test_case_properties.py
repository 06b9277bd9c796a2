"""Properties of every workflow, through the HTTP API on a real database (issue 5, item 8).

A hypothesis state machine per workflow fires random events, by random actors of both sides,
with valid or broken bodies, and checks after every step:
- no sequence of events reaches a state the table does not allow: an accepted event moved
  the case exactly as its row of the table says (a consultation's end back to where it
  began: IN_EXECUTION, or the row's target), fired by the side and role it names;
- a refused event (any 4xx) changed nothing: no event row, no case leaf;
- every accepted event wrote exactly one audit leaf for itself (and a progress query one
  more, the node's reply);
- both sides' histories stay identical from the moment the case is shared;
- replaying the append-only history gives back the stored projection.
And, for every final state of every table, the shortest path the table gives reaches it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from broker.cases.fold import replay
from broker.cases.models import Case, CaseEvent
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import START, Side, Workflow
from tests.conftest import ACCOUNTS, Api
from tests.integration.test_case_helpers import call, mla_request, register_partner
from tests.integration.test_extradition import extradition_request
from tests.integration.test_fiu import disclosure, fiu_request
from tests.integration.test_intel_requests import intel_request
from tests.integration.test_jit import agreement

CASE_LEAVES = (
    "kind IN ('case:transition', 'consent:requested', 'consent:granted', 'consent:refused')"
)
PARTNER = {"it.analyst": "officer", "it.fiu-head": "supervisor"}


def _review() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()


# Valid bodies; evidence events upload a file first (``upload`` is called with the actor).
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "return_to_drafter": lambda: {"comments": "Please complete."},
    "request_information": lambda: {"question": "Which accounts?"},
    "provide_information": lambda: {"information": "Accounts 1 and 2."},
    # A postponement may be consulted on while assessing and during execution (18(25)-(26)).
    "open_consultation": lambda: {"reason": "postponement", "message": "Narrow it?"},
    "offer_conditions": lambda: {"conditions": ["use only in RG 1234/2026"]},
    "assign_execution": lambda: {"executing_authority": "SDNY"},
    "postpone": lambda: {
        "grounds": ["ongoing_investigation"],
        "reasons": "Covert phase.",
        "review_date": _review(),
    },
    "refuse": lambda: {"grounds": ["essential_interests"], "reasons": "Security."},
    "withdraw": lambda: {"reason": "No longer pursued."},
    "written_confirmation": lambda: {"reference": "letter 1"},
    "record_assurance": lambda: {"assurance": "No death penalty will be sought."},
    "respond": lambda: {"kind": "interim", "permitted_purposes": ["money_laundering_analysis"]},
    "request_consent": lambda: {"recipient": "it.guardia-di-finanza", "purpose": "tax"},
    "use_extension_request": lambda: {"recipient": "it.court-milano", "purpose": "trial"},
    "grant_consent": lambda: {"conditions": ["no onward transfer"]},
    "refuse_consent": lambda: {"grounds": ["other"], "reasons": "Source exposure."},
    "request_feedback": lambda: {"question": "Useful?"},
    "give_feedback": lambda: {"feedback": "Very."},
    "refuse_national": lambda: {"grounds": ["nationality"], "reasons": "A national."},
    "submit_for_prosecution": lambda: {"authority": "US Attorney, SDNY"},
    "report_prosecution": lambda: {"outcome": "indicted"},
    "request_provisional_arrest": lambda: {"reasons": "Flight risk."},
    "extend_team": lambda: {
        "expiry": (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).isoformat()
    },
}
# Bodies that differ by workflow: an extradition consultation is on an intended refusal,
# information or the terms of surrender (UNTOC art. 16(16)).
WORKFLOW_BODIES: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("extradition.request", "open_consultation"): lambda: {
        "reason": "intended_refusal",
        "message": "Narrow it?",
    },
    ("intel.request", "refuse"): lambda: {"reasons": "The information is not held."},
}
# The parties of each event-addressed workflow, for an exchange to the other side.
PARTIES = {"jit.team": ("it.central-authority", "de.bka")}
# Steps a walk along a table's shortest path takes first, because the policy refuses the
# event without them: a refusal of extradition with no consultation on record (UNTOC art.
# 16(16); P20.consultation).
BEFORE = {
    ("extradition.request", "refuse"): "open_consultation",
    ("extradition.request", "refuse_national"): "open_consultation",
}
EVIDENCE_EVENTS = frozenset({"deliver_partial", "complete"})

# Who acts in each workflow: requesting side first, then requested side.
ACTORS = {
    "mla.request": (("it.officer", "it.supervisor"), ("us.officer", "us.supervisor")),
    "fiu.request": (("nl.officer", "nl.supervisor"), ("it.analyst", "it.fiu-head")),
    "fiu.disclosure": (("nl.officer", "nl.supervisor"), ("it.analyst", "it.fiu-head")),
    "consent": (("it.analyst", "it.fiu-head"), ("nl.officer", "nl.supervisor")),
    "feedback": (("nl.officer", "nl.supervisor"), ("it.analyst", "it.fiu-head")),
    "extradition.request": (("it.officer", "it.supervisor"), ("us.officer", "us.supervisor")),
    "jit.team": (("it.officer", "it.supervisor"), ("de.system",)),
    "intel.request": (("nl.officer", "nl.supervisor"), ("it.analyst", "it.fiu-head")),
}


def roles_of(login: str) -> set[str]:
    if login in ACCOUNTS:
        return set(ACCOUNTS[login][2])
    return {PARTNER[login]}


def open_root(api: Api, workflow: str) -> str:
    requesting = ACTORS[workflow][0][0]
    if workflow == "mla.request":
        body = {
            "workflow": workflow,
            "counterpart": "us.central-authority",
            "request": mla_request(),
        }
    elif workflow == "fiu.request":
        body = {"workflow": workflow, "counterpart": "it.fiu", "request": fiu_request()}
    elif workflow == "extradition.request":
        body = {
            "workflow": workflow,
            "counterpart": "us.central-authority",
            "request": extradition_request(),
        }
    elif workflow == "jit.team":
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        body = {"workflow": workflow, "counterpart": "de.bka", "request": agreement(expiry=expiry)}
    elif workflow == "intel.request":
        body = {"workflow": workflow, "counterpart": "it.fiu", "request": intel_request()}
    else:
        body = {"workflow": workflow, "counterpart": "it.fiu", "request": disclosure()}
    r = call(api, "POST", "/v1/cases", requesting, json=body)
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    return case_id


def open_thread(api: Api, workflow: str) -> str:
    parent = open_root(api, "fiu.disclosure")
    r = call(api, "POST", f"/v1/cases/{parent}/events", "nl.officer", json={"event": "submit"})
    assert r.status_code == 201, r.text
    event = "request_consent" if workflow == "consent" else "request_feedback"
    asker = ACTORS[workflow][0][0]
    r = call(
        api,
        "POST",
        "/v1/cases",
        asker,
        json={"workflow": workflow, "parent_id": parent, "body": BODIES[event]()},
    )
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    return case_id


def body_for(api: Api, case_id: str, event: str, actor: str, workflow: str = "") -> dict[str, Any]:
    if event == "exchange":
        requesting, requested = PARTIES[workflow]
        to = requested if actor in ACTORS[workflow][0] else requesting
        return {"recipient": to, "text": "Container MSKU 123 leaves Hamburg on Friday."}
    if event in EVIDENCE_EVENTS:
        r = call(
            api,
            "POST",
            f"/v1/cases/{case_id}/evidence",
            actor,
            params={"name": "records.pdf"},
            content=b"evidence bytes",
        )
        # An actor who may not upload here (final case, other side) lists a file that does
        # not exist: the guard refuses it.
        file_id = r.json()["id"] if r.status_code == 201 else str(uuid.uuid4())
        return {"evidence": [file_id]}
    return WORKFLOW_BODIES.get((workflow, event), BODIES.get(event, dict))()


class _Machine(RuleBasedStateMachine):
    api: Api
    engine: Engine
    workflow: Workflow

    def __init__(self) -> None:
        super().__init__()
        self.case_id = ""
        self.state = START
        self.origin: str | None = None  # where an open consultation began
        self.events_seen = 0

    @initialize()
    def open(self) -> None:
        wf = self.workflow
        if wf.parents:
            self.case_id = open_thread(self.api, wf.name)
        else:
            self.case_id = open_root(self.api, wf.name)
        self.state = self._case()["state"]
        self.events_seen = self._count("case_events", "case_id = :c")

    def _case(self) -> dict[str, Any]:
        r = call(self.api, "GET", f"/v1/cases/{self.case_id}", ACTORS[self.workflow.name][0][0])
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def _count(self, table: str, where: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE {where}"),
                    {"c": self.case_id},
                ).scalar_one()
            )

    def _fire(self, event: str, actor: str, valid: bool) -> None:
        wf = self.workflow
        before_leaves = self._count("audit_events", CASE_LEAVES)
        before_notices = self._count("audit_events", "kind = 'case:notice'")
        body = body_for(self.api, self.case_id, event, actor, wf.name) if valid else {"bogus": 1}
        r = call(
            self.api,
            "POST",
            f"/v1/cases/{self.case_id}/events",
            actor,
            json={"event": event, "body": body},
        )
        leaves = self._count("audit_events", CASE_LEAVES) - before_leaves
        notices = self._count("audit_events", "kind = 'case:notice'") - before_notices
        events = self._count("case_events", "case_id = :c")
        if r.status_code == 201:
            t = wf.transition(self.state, event)
            assert t is not None, f"{event} was accepted in {self.state}"
            side = Side.REQUESTING if actor in ACTORS[wf.name][0] else Side.REQUESTED
            assert t.fired_by(side)
            assert roles_of(actor) & t.roles
            new_state = r.json()["case"]["state"]
            expected, self.origin = t.after(self.state, self.origin)
            assert new_state == expected
            assert leaves == 1
            expected_notices = 1 if event == "progress_query" else 0
            assert notices == expected_notices
            assert events == self.events_seen + 1 + expected_notices
            self.state = new_state
            self.events_seen = events
        else:
            assert 400 <= r.status_code < 500, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert (leaves, notices, events) == (0, 0, self.events_seen)

    @rule(data=st.data())
    def fire_any(self, data: st.DataObject) -> None:
        wf = self.workflow
        event = data.draw(st.sampled_from([*wf.events, "teleport"]), label="event")
        actor = data.draw(st.sampled_from([*ACTORS[wf.name][0], *ACTORS[wf.name][1]]))
        self._fire(event, actor, data.draw(st.booleans(), label="valid"))

    @rule(data=st.data())
    def fire_allowed(self, data: st.DataObject) -> None:
        """Make progress: an event the table allows now, by an actor of its side."""
        wf = self.workflow
        options = [
            (t.event, actor)
            for t in wf.from_state(self.state)
            if t.side is not Side.SYSTEM
            for actor in ACTORS[wf.name][0 if t.side is Side.REQUESTING else 1]
            if roles_of(actor) & t.roles
        ]
        if not options:
            return
        event, actor = data.draw(st.sampled_from(options), label="allowed")
        self._fire(event, actor, True)

    @invariant()
    def histories_agree(self) -> None:
        """The requested side holds exactly the events routed between the two sides (and the
        node's own, which are the case's); the requesting side holds all of them."""
        if not self.case_id:
            return
        requested = ACTORS[self.workflow.name][1][0]
        ours = [e["id"] for e in self._case()["timeline"]]
        with self.engine.connect() as conn:
            everything = [
                r.event_id
                for r in conn.execute(
                    text("SELECT event_id FROM case_events WHERE case_id = :c ORDER BY seq"),
                    {"c": self.case_id},
                )
            ]
            routed = [
                r.event_id
                for r in conn.execute(
                    text(
                        "SELECT e.event_id FROM case_events e "
                        "LEFT JOIN messages m ON m.id = e.message_id WHERE e.case_id = :c "
                        "AND ((m.id IS NOT NULL AND m.sender_id <> m.recipient_id) "
                        "OR e.side = 'system') ORDER BY e.seq"
                    ),
                    {"c": self.case_id},
                )
            ]
        assert ours == everything
        r = call(self.api, "GET", f"/v1/cases/{self.case_id}", requested)
        if not routed:
            assert r.status_code == 404  # nothing shared: the other side does not see it
            return
        assert [e["id"] for e in r.json()["timeline"]] == routed

    @invariant()
    def history_folds_into_the_row(self) -> None:
        if not self.case_id:
            return
        with Session(self.engine) as s:
            case = s.get(Case, self.case_id)
            assert case is not None
            events = list(
                s.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.case_id == self.case_id)
                    .order_by(CaseEvent.seq)
                )
            )
            projected = replay(self.workflow, events)
            assert (projected.state, projected.seq) == (case.state, case.seq)
            assert sorted(projected.records) == case.projection["records"]
            assert list(projected.conditions) == case.projection["conditions"]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))


@pytest.fixture
def partner(api: Api) -> None:
    register_partner(api, "it.fiu", "fiu", PARTNER)


@pytest.mark.parametrize("workflow", list(WORKFLOWS))
def test_workflow_properties(api: Api, sync_engine: Engine, partner: None, workflow: str) -> None:
    machine = type(
        f"Machine_{workflow.replace('.', '_')}",
        (_Machine,),
        {"api": api, "engine": sync_engine, "workflow": WORKFLOWS[workflow]},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=18,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


@pytest.mark.parametrize("workflow", list(WORKFLOWS))
def test_every_final_state_is_reached_by_the_tables_path(
    api: Api, partner: None, workflow: str
) -> None:
    wf = WORKFLOWS[workflow]
    # Final states only the node's timers reach are theirs: ERASED (see test_case_clocks), a
    # team's EXPIRED (see test_jit).
    finals = sorted(
        f for f in wf.finals if all(t.side is not Side.SYSTEM for _, t in wf.path_to(f))
    )
    assert finals
    for final in finals:
        case_id = open_thread(api, workflow) if wf.parents else open_root(api, workflow)
        for state, t in wf.path_to(final):
            if state == START:
                continue  # the thread was opened by its opening event
            steps = [t]
            before = BEFORE.get((workflow, t.event))
            if before is not None:
                first = wf.transition(state, before)
                assert first is not None
                steps = [first, t]
            for step in steps:
                actor = next(
                    a
                    for a in ACTORS[workflow][0 if step.side is Side.REQUESTING else 1]
                    if roles_of(a) & step.roles
                )
                body = body_for(api, case_id, step.event, actor, workflow)
                r = call(
                    api,
                    "POST",
                    f"/v1/cases/{case_id}/events",
                    actor,
                    json={"event": step.event, "body": body},
                )
                assert r.status_code == 201, (state, step.event, r.text)
        r = call(api, "GET", f"/v1/cases/{case_id}", ACTORS[workflow][0][0])
        assert r.json()["state"] == final
