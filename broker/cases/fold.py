"""A case's state is a fold of its accepted events.

``replay(workflow, events)`` folds a case's history (the append-only ``case_events`` rows, or
anything with the same fields) into a ``Projection``: the state, the records on file, the
conditions accepted, the clock's pauses, the last FIU response kind, the review date of a
postponement, and where an open consultation began (its end returns there). The service
keeps the same projection on the ``cases`` row, updated by the very ``step`` function, in the
transaction that appends the event; the tests check that replaying the history always gives
back the stored row.

Notices the node raises (reminders, escalations, progress replies) are in the history too:
they take a sequence number and change nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from broker.cases.workflow import START, Workflow


class EventLike(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def at(self) -> dt.datetime: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Projection:
    state: str
    seq: int = 0
    records: frozenset[str] = frozenset()
    offered_conditions: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    response_kind: str | None = None
    review_date: dt.datetime | None = None
    paused_since: dt.datetime | None = None
    pauses: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    shared_at: dt.datetime | None = None
    assurance: bool = False
    consent_conditions: tuple[str, ...] = field(default=())
    consulted_from: str | None = None

    @property
    def shared(self) -> bool:
        return self.shared_at is not None


class HistoryError(ValueError):
    """A history holds an event its workflow does not allow where it stands."""


def start(workflow: Workflow) -> Projection:
    return Projection(state=workflow.initial)


def _review(d: Mapping[str, Any]) -> dt.datetime | None:
    review = d.get("review_date")
    return dt.datetime.fromisoformat(review) if review else None


# What an event does to the projection beyond its state and records: a row of a table names
# one of these as its ``fold_effect``. Each takes the projection before the event, the one
# after its state and records, and the event's details.
Effect = Callable[[Projection, Projection, Mapping[str, Any]], Projection]


def conditions_offered(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, offered_conditions=tuple(d.get("conditions", ())))


def conditions_accepted(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, conditions=p.conditions + p.offered_conditions, offered_conditions=())


def offer_dropped(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, offered_conditions=())


def response_given(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, response_kind=str(d.get("kind")))


def review_set(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, review_date=_review(d))


def review_cleared(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, review_date=None)


def assured(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, assurance=True)


def consent_conditions_set(p: Projection, n: Projection, d: Mapping[str, Any]) -> Projection:
    return replace(n, consent_conditions=tuple(d.get("conditions", ())))


def step(workflow: Workflow, p: Projection, ev: EventLike) -> Projection:
    """The projection after ``ev``. Raises HistoryError if the table does not allow it."""
    t = workflow.transition(p.state, ev.event)
    if t is None:
        if ev.details.get("notice"):
            return replace(p, seq=p.seq + 1)
        raise HistoryError(f"{workflow.name}: {ev.event} is not allowed in {p.state}")
    d = ev.details
    records = p.records | t.records
    if t.records_by_reason:
        records |= t.records_by_reason.get(str(d.get("reason")), frozenset())
    state, origin = t.after(p.state, p.consulted_from)
    nxt = replace(p, state=state, seq=p.seq + 1, records=records, consulted_from=origin)
    if t.event == workflow.sharing_event or p.state == START:
        nxt = replace(nxt, shared_at=p.shared_at or ev.at)
    if t.fold_effect is not None:
        nxt = t.fold_effect(p, nxt, d)
    if t.pauses_clock and p.paused_since is None:
        nxt = replace(nxt, paused_since=ev.at)
    if t.resumes_clock and p.paused_since is not None:
        nxt = replace(nxt, paused_since=None, pauses=(*p.pauses, (p.paused_since, ev.at)))
    return nxt


def replay(workflow: Workflow, events: Iterable[EventLike]) -> Projection:
    p = start(workflow)
    for ev in events:
        p = step(workflow, p, ev)
    return p


@dataclass(frozen=True, slots=True)
class Applied:
    """An event as the fold sees it."""

    event: str
    at: dt.datetime
    details: Mapping[str, Any] = field(default_factory=dict)


def projection_json(p: Projection) -> dict[str, Any]:
    """The projection as stored in the ``cases.projection`` JSON column."""
    return {
        "records": sorted(p.records),
        "offered_conditions": list(p.offered_conditions),
        "conditions": list(p.conditions),
        "response_kind": p.response_kind,
        "review_date": p.review_date.isoformat() if p.review_date else None,
        "paused_since": p.paused_since.isoformat() if p.paused_since else None,
        "pauses": [[a.isoformat(), b.isoformat()] for a, b in p.pauses],
        "shared_at": p.shared_at.isoformat() if p.shared_at else None,
        "assurance": p.assurance,
        "consent_conditions": list(p.consent_conditions),
        "consulted_from": p.consulted_from,
    }


def projection_from(state: str, seq: int, data: Mapping[str, Any]) -> Projection:
    def when(value: Any) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    return Projection(
        state=state,
        seq=seq,
        records=frozenset(data.get("records", ())),
        offered_conditions=tuple(data.get("offered_conditions", ())),
        conditions=tuple(data.get("conditions", ())),
        response_kind=data.get("response_kind"),
        review_date=when(data.get("review_date")),
        paused_since=when(data.get("paused_since")),
        pauses=tuple(
            (dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b))
            for a, b in data.get("pauses", ())
        ),
        shared_at=when(data.get("shared_at")),
        assurance=bool(data.get("assurance", False)),
        consent_conditions=tuple(data.get("consent_conditions", ())),
        consulted_from=data.get("consulted_from"),
    )
