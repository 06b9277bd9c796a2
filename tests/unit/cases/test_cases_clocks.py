"""Deadlines and the timers' next actions, as pure functions of a history and a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from broker.cases.clocks import (
    ClockConfigError,
    add_business_days,
    deadlines,
    due_actions,
    load_clocks,
    parse_clocks,
)
from broker.cases.fold import Applied
from broker.cases.tables import WORKFLOWS

MLA = WORKFLOWS["mla.request"]
FIU = WORKFLOWS["fiu.request"]
MON = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
EIO = load_clocks(None)
DAY = dt.timedelta(days=1)


def test_business_days_skip_weekends() -> None:
    friday = MON + 4 * DAY
    assert add_business_days(friday, 1) == MON + 7 * DAY
    assert add_business_days(MON, 5) == MON + 7 * DAY
    assert add_business_days(MON, 30) == MON + 42 * DAY
    assert add_business_days(MON, 0) == MON


def test_the_eio_clock_applies_to_eio_requests_only() -> None:
    events = [Applied("submit_for_vetting", MON), Applied("transmit", MON)]
    found = deadlines(
        workflow=MLA, events=events, clocks=EIO, legal_basis="eu-eio", requested=None, now=MON + DAY
    )
    assert [(d.name, d.due_at, d.status) for d in found] == [
        ("acknowledge", MON + 7 * DAY, "running")
    ]
    assert (
        deadlines(
            workflow=MLA, events=events, clocks=EIO, legal_basis="untoc", requested=None, now=MON
        )
        == []
    )


def test_pauses_extend_and_stops_end() -> None:
    events = [
        Applied("submit_for_vetting", MON),
        Applied("transmit", MON),
        Applied("acknowledge", MON + DAY),
        Applied("start_assessment", MON + DAY),
        Applied("request_information", MON + 2 * DAY),
    ]
    paused = deadlines(
        workflow=MLA,
        events=events,
        clocks=EIO,
        legal_basis="eu-eio",
        requested=None,
        now=MON + 12 * DAY,
    )
    decide = next(d for d in paused if d.name == "decide")
    assert decide.status == "paused"
    assert decide.due_at == MON + 41 * DAY  # 31 + the 10 paused days so far
    events += [Applied("provide_information", MON + 12 * DAY), Applied("accept", MON + 50 * DAY)]
    done = deadlines(
        workflow=MLA,
        events=events,
        clocks=EIO,
        legal_basis="eu-eio",
        requested=None,
        now=MON + 60 * DAY,
    )
    decide = next(d for d in done if d.name == "decide")
    assert (decide.status, decide.paused_seconds) == ("missed", 10 * 86400)
    assert decide.due_at == MON + 41 * DAY
    execute = next(d for d in done if d.name == "execute")
    assert (execute.status, execute.due_at) == ("running", MON + 140 * DAY)


def test_a_case_that_ends_another_way_ends_its_deadlines() -> None:
    events = [
        Applied("submit_for_vetting", MON),
        Applied("transmit", MON),
        Applied("withdraw", MON + 30 * DAY),
    ]
    [ack] = deadlines(
        workflow=MLA,
        events=events,
        clocks=EIO,
        legal_basis="eu-eio",
        requested=(MON + 9 * DAY, "trial"),
        now=MON + 40 * DAY,
    )[:1]
    assert ack.status == "ended"


def test_the_egmont_clock_counts_business_days() -> None:
    [reply] = deadlines(
        workflow=FIU,
        events=[Applied("submit", MON)],
        clocks=EIO,
        legal_basis="egmont-principles",
        requested=None,
        now=MON,
    )
    assert reply.due_at == MON + 42 * DAY
    assert reply.source == "egmont"


def test_due_actions_happen_once_each() -> None:
    events = [Applied("transmit", MON)]
    found = deadlines(
        workflow=MLA, events=events, clocks=EIO, legal_basis="eu-eio", requested=None, now=MON
    )

    def actions(history: list[Applied]) -> list[tuple[str, str]]:
        return [
            (a.kind, a.key)
            for a in due_actions(
                workflow=MLA,
                events=history,
                state="TRANSMITTED",
                records=frozenset(),
                review_date=None,
                urgent=True,
                initiated_by="interpol",
                shared_at=MON,
                open_deadlines=found,
                retention=365 * DAY,
                urgent_every=DAY,
            )
        ]

    assert actions(events) == [
        ("confirmation_escalation", "1"),
        ("reminder", "eu-eio:acknowledge"),
        ("escalation", "eu-eio:acknowledge"),
    ]
    raised = [
        *events,
        Applied(
            "confirmation_escalation", MON + DAY, {"notice": "confirmation_escalation", "key": "1"}
        ),
        Applied("reminder", MON + 5 * DAY, {"notice": "reminder", "key": "eu-eio:acknowledge"}),
    ]
    assert actions(raised) == [
        ("confirmation_escalation", "2"),
        ("escalation", "eu-eio:acknowledge"),
    ]


def test_clock_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "clocks.yaml"
    path.write_text(
        "clocks:\n  fast:\n    title: Fast\n    workflows: [mla.request]\n"
        "    milestones:\n      - {name: ack, starts_on: [transmit], "
        "stops_on: [acknowledge], hours: 8}\n"
    )
    [clock] = load_clocks(path)
    assert clock.legal_bases is None
    assert clock.milestones[0].due(MON) == MON + dt.timedelta(hours=8)
    with pytest.raises(ClockConfigError, match="no duration"):
        parse_clocks(
            {
                "x": {
                    "title": "x",
                    "workflows": [],
                    "milestones": [{"name": "a", "starts_on": [], "stops_on": []}],
                }
            }
        )
    with pytest.raises(ClockConfigError, match="title"):
        parse_clocks({"x": {"workflows": [], "milestones": []}})
    path.write_text("just text")
    with pytest.raises(ClockConfigError, match="clocks"):
        load_clocks(path)


INTEL = WORKFLOWS["intel.request"]


@pytest.mark.parametrize(
    ("facts", "source", "limit"),
    [
        # Directive (EU) 2023/977 art. 5(1)(a), (b), (c)
        ({"urgent": True, "information_access": "direct"}, "eu-2023-977-urgent-direct", 8),
        ({"urgent": True, "information_access": "indirect"}, "eu-2023-977-urgent-indirect", 72),
        ({"urgent": False, "information_access": "direct"}, "eu-2023-977", 168),
        ({"urgent": False, "information_access": None}, "eu-2023-977", 168),
    ],
)
def test_the_2023_977_clock_follows_urgency_and_access(
    facts: dict[str, object], source: str, limit: int
) -> None:
    events = [Applied("submit", MON)]
    [found] = deadlines(
        workflow=INTEL,
        events=events,
        clocks=EIO,
        legal_basis="eu-2023-977",
        requested=None,
        now=MON,
        facts=facts,
    )
    assert (found.source, found.due_at) == (source, MON + dt.timedelta(hours=limit))
    assert found.side == "requested"
    stopped = deadlines(
        workflow=INTEL,
        events=[*events, Applied("respond", MON + dt.timedelta(hours=1))],
        clocks=EIO,
        legal_basis=None,
        requested=None,
        now=MON + DAY * 30,
        facts=facts,
    )
    assert [d.status for d in stopped] == ["met"]


def test_an_urgent_request_that_says_nothing_of_access_runs_no_clock() -> None:
    # The request model refuses it; the clocks alone would not guess an art. 5(1) limit.
    found = deadlines(
        workflow=INTEL,
        events=[Applied("submit", MON)],
        clocks=EIO,
        legal_basis=None,
        requested=None,
        now=MON,
        facts={"urgent": True, "information_access": None},
    )
    assert found == []


def test_a_deadlines_notices_name_its_side_and_citation() -> None:
    [d] = deadlines(
        workflow=INTEL,
        events=[Applied("submit", MON)],
        clocks=EIO,
        legal_basis=None,
        requested=None,
        now=MON,
        facts={"urgent": True, "information_access": "direct"},
    )
    actions = due_actions(
        workflow=INTEL,
        events=[Applied("submit", MON)],
        state="SUBMITTED",
        records=frozenset(),
        review_date=None,
        urgent=True,
        initiated_by="written",
        shared_at=MON,
        open_deadlines=[d],
        retention=DAY * 365,
        urgent_every=DAY,
    )
    assert [(a.kind, a.at) for a in actions] == [
        ("reminder", MON + dt.timedelta(hours=6)),
        ("escalation", MON + dt.timedelta(hours=8)),
    ]
    assert actions[0].detail["side"] == "requested"
    assert actions[0].detail["citation"] == "Directive (EU) 2023/977 art. 5(1)(a)"


def test_a_clocks_when_and_side_are_checked() -> None:
    first: dict[str, Any] = {"name": "a", "starts_on": ["submit"], "stops_on": [], "hours": 1}
    base: dict[str, Any] = {"title": "x", "workflows": ["intel.request"], "milestones": [first]}
    [clock] = parse_clocks({"x": {**base, "when": {"urgent": True}}})
    assert clock.applies("intel.request", None, {"urgent": True})
    assert not clock.applies("intel.request", None, {"urgent": False})
    assert not clock.applies("intel.request", None, None)
    with pytest.raises(ClockConfigError, match="unknown case fact 'colour'"):
        parse_clocks({"x": {**base, "when": {"colour": "red"}}})
    with pytest.raises(ClockConfigError, match=r"when\.urgent"):
        parse_clocks({"x": {**base, "when": {"urgent": "yes"}}})
    with pytest.raises(ClockConfigError, match="when must be a mapping"):
        parse_clocks({"x": {**base, "when": ["urgent"]}})
    milestone = {**first, "side": "requesting"}
    [clock] = parse_clocks({"x": {**base, "milestones": [milestone]}})
    assert clock.milestones[0].side == "requesting"
    with pytest.raises(ClockConfigError, match="side must be requesting or requested"):
        parse_clocks({"x": {**base, "milestones": [{**milestone, "side": "both"}]}})
