"""What the extradition and team tables (UNTOC arts. 16, 19) ask of the engine beyond their
rows: an event the node's timers fire at a date of the case's terms, either party firing an
event, a row decided by the packs under another name, and the team's members as the policy
context's parties."""

from __future__ import annotations

import datetime as dt

import pytest

from broker.cases.bodies import Refuse
from broker.cases.clocks import due_actions
from broker.cases.guards import NATIONAL_GROUND, NOT_NATIONAL, TEAM_IN_TERM, Facts
from broker.cases.models import Case
from broker.cases.policy import parties_of
from broker.cases.tables import EXTRADITION, JIT
from broker.cases.workflow import Side, Transition, Workflow

AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _due(state: str, terms: dict[str, str] | None) -> list[tuple[str, dt.datetime]]:
    return [
        (a.kind, a.at)
        for a in due_actions(
            workflow=JIT,
            events=[],
            state=state,
            records=frozenset(),
            review_date=None,
            urgent=False,
            initiated_by="written",
            shared_at=AT,
            open_deadlines=[],
            retention=365 * DAY,
            urgent_every=DAY,
            terms=terms,
        )
    ]


def test_the_team_expires_at_the_date_of_its_terms() -> None:
    expiry = AT + 30 * DAY
    assert _due("ACTIVE", {"expiry": expiry.isoformat()}) == [("expire_team", expiry)]
    # Nothing without a date, nor once the team left the state the event fires from.
    assert _due("ACTIVE", {}) == []
    assert _due("ACTIVE", None) == []
    assert [k for k, _ in _due("CLOSED", {"expiry": expiry.isoformat()})] == []


def test_only_the_nodes_rows_fire_at_a_date() -> None:
    with pytest.raises(ValueError, match="fires at a date but not by the node"):
        Workflow(
            name="x",
            title="x",
            citation="x",
            case_types=frozenset({"jit"}),
            states=("A", "B"),
            finals=frozenset({"B"}),
            initial="A",
            message_types={"jit": "jit.event"},
            transitions=(
                Transition(
                    event="go",
                    sources=("A",),
                    target="B",
                    side=Side.REQUESTING,
                    summary="go",
                    fires_at_term="expiry",
                ),
            ),
        )


def test_either_party_exchanges_but_not_the_node() -> None:
    exchange = JIT.transition("ACTIVE", "exchange")
    assert exchange is not None
    assert exchange.fired_by(Side.REQUESTING)
    assert exchange.fired_by(Side.REQUESTED)
    assert not exchange.fired_by(Side.SYSTEM)
    assert not exchange.fired_by(None)
    close = JIT.transition("ACTIVE", "close_team")
    assert close is not None
    assert close.fired_by(Side.REQUESTING)
    assert not close.fired_by(Side.REQUESTED)


def test_the_refusal_of_a_national_is_a_refusal_to_the_packs() -> None:
    row = EXTRADITION.transition("CONSULTATION", "refuse_national")
    assert row is not None
    assert (row.policy_event, row.target) == ("refuse", "PROSECUTION_DUE")
    plain = EXTRADITION.transition("CONSULTATION", "refuse")
    assert plain is not None
    assert (plain.policy_event, plain.target) == (None, "REFUSED")
    # The domestic prosecution is no final state: retention does not run while it is open.
    assert {"PROSECUTION_DUE", "PROSECUTION_SUBMITTED"}.isdisjoint(EXTRADITION.finals)
    assert EXTRADITION.erasing_from("PROSECUTION_DUE") is None


def _facts(grounds: list[str], terms: dict[str, str] | None = None) -> Facts:
    return Facts(
        workflow="extradition.request",
        case_type="extradition",
        state="CONSULTATION",
        event="refuse",
        side=Side.REQUESTED,
        body=Refuse(grounds=grounds),
        account_id=None,
        roles=frozenset({"supervisor"}),
        now=AT,
        terms=terms or {},
    )


def test_the_nationality_ground_picks_the_refusal() -> None:
    assert NOT_NATIONAL.failure(_facts(["dual_criminality"])) is None
    assert NOT_NATIONAL.failure(_facts(["nationality", "other"])) is not None
    assert NATIONAL_GROUND.failure(_facts(["nationality"])) is None
    assert NATIONAL_GROUND.failure(_facts(["dual_criminality"])) is not None


def test_a_team_is_in_term_until_its_expiry() -> None:
    assert TEAM_IN_TERM.failure(_facts([], {"expiry": (AT + DAY).isoformat()})) is None
    late = TEAM_IN_TERM.failure(_facts([], {"expiry": AT.isoformat()}))
    assert late is not None
    assert late.status == 409
    # No expiry on file: fail closed.
    assert TEAM_IN_TERM.failure(_facts([])) is not None


def _case(terms: dict[str, object]) -> Case:
    return Case(requesting_id="it.police", requested_id="es.police", terms=terms)


def test_the_members_are_the_parties_the_packs_see() -> None:
    assert parties_of(_case({})) == {"it.police", "es.police"}
    members = ["it.police", "es.police", "nl.police"]
    assert parties_of(_case({"members": members})) == set(members)
    # A team whose agreement names nobody has no party: every exchange is refused.
    assert parties_of(_case({"members": []})) == frozenset()
