"""Workflows as data: a transition table per workflow, and what is derived from it.

A ``Workflow`` is states (initial, final) and ``Transition`` rows: the event, the states it
may fire from, the state it leads to (or none: a side event that leaves the state alone), the
side that fires it (requesting, requested, or the node's own timers), the roles of the
accounts that may fire it, the event's body schema, its guards with their citations, the case
records it puts on file, and the message type of the signed envelope that carries it.

Derived from the tables, never written twice: the events a caller may fire next
(``allowed_events``), the JSON description the API serves, and the Mermaid diagram
(``broker.cases.diagram``). Invariants the unit tests check for every table: every state is
reachable from the start, every final state is reachable, final states have no way out but
the system's retention expiry, and no two transitions fire the same event from one state.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from broker.cases.bodies import NoBody
from broker.core.errors import PalermoError

START = "[*]"


class Side(enum.StrEnum):
    REQUESTING = "requesting"
    REQUESTED = "requested"
    SYSTEM = "system"


HANDLERS = frozenset({"officer", "supervisor", "system"})
SUPERVISORS = frozenset({"supervisor"})


class GuardError(PalermoError):
    status, slug, title = 422, "guard-unmet", "The event does not meet a guard of its workflow"


class GuardForbiddenError(GuardError):
    status, slug, title = 403, "guard-forbidden", "A guard of the workflow forbids this caller"


class GuardConflictError(GuardError):
    status, slug, title = 409, "guard-conflict", "The case's history does not allow this event"


@dataclass(frozen=True, slots=True)
class GuardFailure:
    """Why a guard refused an event: the guard id, what is wrong, the law it comes from."""

    guard: str
    detail: str
    citation: str
    status: int = 422

    def error(self) -> GuardError:
        cls = {403: GuardForbiddenError, 409: GuardConflictError}.get(self.status, GuardError)
        return cls(
            f"{self.guard}: {self.detail} ({self.citation})",
            guard=self.guard,
            citation=self.citation,
        )


@dataclass(frozen=True, slots=True)
class Guard:
    """A check an event must pass before it is signed and sent. ``check`` returns None when
    the event may go, or the reason it may not."""

    id: str
    text: str
    citation: str
    check: Callable[[Any], str | None]
    status: int = 422

    def failure(self, facts: Any) -> GuardFailure | None:
        detail = self.check(facts)
        return None if detail is None else GuardFailure(self.id, detail, self.citation, self.status)


@dataclass(frozen=True, slots=True)
class Transition:
    event: str
    sources: tuple[str, ...]
    target: str | None
    side: Side
    summary: str
    citation: str = ""
    roles: frozenset[str] = HANDLERS
    body: type[BaseModel] = NoBody
    guards: tuple[Guard, ...] = ()
    records: frozenset[str] = frozenset()
    message_type: str | None = None
    audit_kind: str = "case:transition"
    pauses_clock: bool = False
    resumes_clock: bool = False

    @property
    def side_event(self) -> bool:
        return self.target is None

    def target_from(self, state: str) -> str:
        return state if self.target is None else self.target


@dataclass(frozen=True, slots=True)
class Workflow:
    """One transition table. ``initial`` is the state a case opens in without an event, or
    ``START`` when a case is opened by firing one of the events whose source is ``START``.
    ``sharing_event`` is the event that first reaches the other side: before it, events stay
    inside the requesting participant (drafting and vetting); from it on, every event is
    routed to the counterpart."""

    name: str
    title: str
    citation: str
    case_types: frozenset[str]
    states: tuple[str, ...]
    finals: frozenset[str]
    initial: str
    transitions: tuple[Transition, ...]
    message_types: Mapping[str, str]
    sharing_event: str | None = None
    parents: frozenset[str] = frozenset()
    request_model: type[BaseModel] | None = None
    state_notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        known = {*self.states, START}
        for t in self.transitions:
            for source in t.sources:
                if source not in known:
                    raise ValueError(f"{self.name}: {t.event} fires from unknown state {source}")
                if (source, t.event) in seen:
                    raise ValueError(f"{self.name}: two transitions fire {t.event} from {source}")
                seen.add((source, t.event))
            if t.target is not None and t.target not in self.states:
                raise ValueError(f"{self.name}: {t.event} leads to unknown state {t.target}")
        if self.initial not in known:
            raise ValueError(f"{self.name}: unknown initial state {self.initial}")
        if not self.finals <= set(self.states):
            raise ValueError(f"{self.name}: a final state is not a state")

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    @property
    def opening_events(self) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if START in t.sources)

    def open_states(self) -> tuple[str, ...]:
        return tuple(s for s in self.states if s not in self.finals)

    def transition(self, state: str, event: str) -> Transition | None:
        for t in self.transitions:
            if t.event == event and state in t.sources:
                return t
        return None

    def from_state(self, state: str) -> Iterator[Transition]:
        return (t for t in self.transitions if state in t.sources)

    def message_type(self, transition: Transition, case_type: str) -> str:
        return transition.message_type or self.message_types[case_type]

    def reachable(self) -> set[str]:
        """States reachable from the start by any sequence of events."""
        frontier = [self.initial] if self.initial != START else []
        if self.initial == START:
            frontier = [t.target for t in self.opening_events if t.target is not None]
        seen = set(frontier)
        while frontier:
            state = frontier.pop()
            for t in self.from_state(state):
                target = t.target_from(state)
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        return seen

    def path_to(self, goal: str) -> list[tuple[str, Transition]]:
        """A shortest sequence of (state, transition) from the start that reaches ``goal``.
        Raises ValueError if there is none."""
        starts: list[tuple[str, list[tuple[str, Transition]]]] = []
        if self.initial == START:
            for t in self.opening_events:
                assert t.target is not None
                starts.append((t.target, [(START, t)]))
        else:
            starts.append((self.initial, []))
        queue = list(starts)
        seen = {s for s, _ in starts}
        while queue:
            state, path = queue.pop(0)
            if state == goal:
                return path
            for t in self.from_state(state):
                target = t.target_from(state)
                if target not in seen:
                    seen.add(target)
                    queue.append((target, [*path, (state, t)]))
        raise ValueError(f"{self.name}: {goal} is not reachable")

    def describe(self) -> dict[str, Any]:
        """The table as JSON: what the API serves and the docs print."""
        return {
            "name": self.name,
            "title": self.title,
            "citation": self.citation,
            "case_types": sorted(self.case_types),
            "parents": sorted(self.parents),
            "states": list(self.states),
            "initial": self.initial,
            "finals": sorted(self.finals),
            "sharing_event": self.sharing_event,
            "transitions": [describe_transition(self, t) for t in self.transitions],
        }


def describe_transition(workflow: Workflow, t: Transition) -> dict[str, Any]:
    schema = t.body.model_json_schema()
    return {
        "event": t.event,
        "from": list(t.sources),
        "to": t.target,
        "side": t.side.value,
        "roles": sorted(t.roles),
        "summary": t.summary,
        "citation": t.citation,
        "message_type": {ct: workflow.message_type(t, ct) for ct in sorted(workflow.case_types)},
        "records": sorted(t.records),
        "guards": [{"id": g.id, "text": g.text, "citation": g.citation} for g in t.guards],
        "required": sorted(schema.get("required", [])),
        "body_schema": schema,
    }
