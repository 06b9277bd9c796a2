"""Workflows as data: a transition table per workflow, and what is derived from it.

A ``Workflow`` is states (initial, final) and ``Transition`` rows: the event, the states it
may fire from, the state it leads to (or none: a side event that leaves the state alone), the
side that fires it (requesting, requested, or the node's own timers), the roles of the
accounts that may fire it, the event's body schema, its guards with their citations, the case
records it puts on file, and the message type of the signed envelope that carries it. What
the service does for an event beyond the fold is a flag of its row too (who counts as a
drafter, which events carry or amend the request, widen the terms, grant the parent's
consent, are answered with a progress reply, erase the case, follow a signed receipt, are
seen by the packs under another name, are fired by either party, go to the participant their
body names, are fired by the node's timers at a date of the case's terms, or set its terms),
and which states are private to the requesting side is a field of the workflow: the
service and the views name no event, state or guard, so a new workflow is a table and
nothing else. All rows and tables are written with keyword arguments.

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
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from broker.cases.bodies import NoBody
from broker.core.errors import PalermoError

if TYPE_CHECKING:
    from broker.cases.fold import Projection

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Guard:
    """A check an event must pass before it is signed and sent. ``check`` returns None when
    the event may go, or the reason it may not.

    ``excludes_drafters``: the guard refuses whoever drafted or submitted the request (four
    eyes), so the allowed next events leave its event out for them before any body is given.
    ``on_parent``: the guard looks only at the parent case of a thread, so opening a thread
    without naming its event picks the one opening event whose such guards the parent meets.
    ``of_case``: the guard decides from the case alone, never from the event's body (a full
    response already given, the provisional arrest already asked), so an event it refuses
    is not offered among the caller's next events.
    ``reads_message_consents``: the guard also reads the consents granted through the
    message door for the parent's material (``Facts.message_consents``: the one consent
    model, issue 14 item 1), which the service looks up only for such a guard.
    """

    id: str
    text: str
    citation: str
    check: Callable[[Any], str | None]
    status: int = 422
    excludes_drafters: bool = False
    on_parent: bool = False
    of_case: bool = False
    reads_message_consents: bool = False

    def failure(self, facts: Any) -> GuardFailure | None:
        detail = self.check(facts)
        return None if detail is None else GuardFailure(self.id, detail, self.citation, self.status)


@dataclass(frozen=True, slots=True)
class Prerequisite:
    """What the law puts before an event, told to a caller who fires it where the table does
    not allow it (``refuse`` before a consultation: "consult first", 18(26))."""

    text: str
    citation: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One row of a table. Beside its event, sources, target, side, roles, body, guards and
    records, a row declares what the service does for it, so that a new workflow is a table
    and nothing else:

    - ``drafting``: the account firing it counts as a drafter of the request, with the one
      that opened the case (the four-eyes guard refuses drafters).
    - ``carries_request``: the event's envelope carries the case's request: the amendment in
      its body, or else the one stored.
    - ``request_as_stored``: a request in its body must be the stored (vetted) one, unchanged.
    - ``amends_request``: the request it carries replaces the stored one (sealed again, its
      metadata copied onto the case row).
    - ``widens_terms``: the recipients and purposes its body permits are added to the case's
      terms.
    - ``permits_named_recipients``: its envelope's permitted recipients include the
      recipients the case's request named (P18: the response to an FIU request may go on to
      them without a further consent).
    - ``grants_parent_consent``: the thread's consent is added to the parent case's terms.
    - ``triggers_progress_reply``: the node answers it at once with a ``progress_reply``
      notice from the case's state.
    - ``erases``: it is the retention expiry: the node's timers fire it when a case has been
      in its source state for the retention period; its target is the state of an erased
      case.
    - ``on_receipt``: the node fires it itself, for the requested side, once that side's
      node has receipted the envelope of the event that led to its source state.
    - ``records_by_reason``: further case records it puts on file, by the ``reason`` of its
      body (the reason is kept in the event's clear metadata).
    - ``pauses_clock`` and ``resumes_clock``: it pauses or resumes the response clock.
    - ``remembers_origin``: it opens a consultation; the state it fires from is kept (the
      projection's ``consulted_from``) for the consultation's end to return to.
    - ``returns_to_origin``: it ends a consultation, and leads back to the state the
      consultation began in when that is one of these states, instead of ``target``
      (UNTOC art. 18(26): a consultation during execution returns to execution).
    - ``prerequisite``: the rule that governs where it may fire, when the law gives one: the
      answer to firing it from another state names it with its citation.
    - ``policy_event``: the event name the policy packs see, when the row is a variant of an
      event of their vocabulary (the refusal of a national is a ``refuse``, UNTOC 16(10)).
    - ``either_side``: either party may fire it, not only ``side`` (an exchange within a
      joint investigation team).
    - ``addressed``: its envelope goes to the participant its body's ``recipient`` names (an
      exchange within a joint investigation team), not to the other side.
    - ``fires_at_term``: the node's timers fire it once the date its case's ``terms`` hold
      under this key has passed (a joint investigation team's expiry, UNTOC art. 19).
    - ``sets_terms``: the body fields it copies into the case's terms (a team's new expiry).
    - ``fold_effect``: what it does to the case's projection beyond its state and records
      (one of the effects of ``broker.cases.fold``: conditions offered or accepted, the
      response kind, the review date, the assurance, the consent's conditions).
    """

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
    drafting: bool = False
    carries_request: bool = False
    request_as_stored: bool = False
    amends_request: bool = False
    widens_terms: bool = False
    permits_named_recipients: bool = False
    grants_parent_consent: bool = False
    triggers_progress_reply: bool = False
    erases: bool = False
    on_receipt: bool = False
    remembers_origin: bool = False
    returns_to_origin: frozenset[str] = frozenset()
    prerequisite: Prerequisite | None = None
    policy_event: str | None = None
    either_side: bool = False
    addressed: bool = False
    fires_at_term: str | None = None
    sets_terms: frozenset[str] = frozenset()
    fold_effect: Callable[[Projection, Projection, Mapping[str, Any]], Projection] | None = None
    records_by_reason: Mapping[str, frozenset[str]] = field(
        default_factory=dict, compare=False, hash=False
    )

    def fired_by(self, side: Side | None) -> bool:
        """Whether a caller on ``side`` may fire it (the side, or either party)."""
        if side is None:
            return False
        return side is self.side or (self.either_side and side is not Side.SYSTEM)

    @property
    def side_event(self) -> bool:
        return self.target is None

    def target_from(self, state: str, origin: str | None = None) -> str:
        """The state after it fires from ``state``; ``origin`` is where the case's open
        consultation began, if one is open."""
        if origin is not None and origin in self.returns_to_origin:
            return origin
        return state if self.target is None else self.target

    def after(self, state: str, origin: str | None) -> tuple[str, str | None]:
        """The state after it fires from ``state`` while the consultation open (if any)
        began in ``origin``, and where the consultation open after it began."""
        if self.remembers_origin:
            return self.target_from(state), state
        if self.returns_to_origin:
            return self.target_from(state, origin), None
        return self.target_from(state, origin), origin

    @property
    def targets(self) -> tuple[str, ...]:
        """Every state it may lead to from a source (beside the source itself)."""
        return tuple(dict.fromkeys(s for s in (self.target, *sorted(self.returns_to_origin)) if s))


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """One transition table. ``initial`` is the state a case opens in without an event, or
    ``START`` when a case is opened by firing one of the events whose source is ``START``.
    ``sharing_event`` is the event that first reaches the other side: before it, events stay
    inside the requesting participant (drafting and vetting); from it on, every event is
    routed to the counterpart. ``private_states`` are the states of that time (drafting,
    vetting): the requested side never sees an event fired from one, but for the sharing
    event. ``parents`` are the workflows a thread of this one opens under."""

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
    private_states: frozenset[str] = frozenset()
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
            if t.fires_at_term and t.side is not Side.SYSTEM:
                raise ValueError(f"{self.name}: {t.event} fires at a date but not by the node")
        if self.initial not in known:
            raise ValueError(f"{self.name}: unknown initial state {self.initial}")
        if not self.finals <= set(self.states):
            raise ValueError(f"{self.name}: a final state is not a state")
        if not self.private_states <= set(self.states):
            raise ValueError(f"{self.name}: a private state is not a state")

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    @property
    def opening_events(self) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if START in t.sources)

    @property
    def erased_states(self) -> frozenset[str]:
        """The states of a case whose content was erased at the end of retention."""
        return frozenset(t.target for t in self.transitions if t.erases and t.target)

    def erasing_from(self, state: str) -> Transition | None:
        """The retention expiry of a case in ``state``, if it has one."""
        return next((t for t in self.from_state(state) if t.erases), None)

    def on_receipt_from(self, state: str) -> Transition | None:
        """The event the node fires on the signed receipt of a case in ``state``, if any."""
        return next((t for t in self.from_state(state) if t.on_receipt), None)

    def timed_from(self, state: str) -> Transition | None:
        """The event the node's timers fire at a date of the case's terms, from ``state``."""
        return next((t for t in self.from_state(state) if t.fires_at_term), None)

    def visible_to_requested(self, state: str, event: str) -> bool:
        """Whether the requested side sees an event fired from ``state``."""
        return state not in self.private_states or event == self.sharing_event

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
                for target in t.targets or (state,):
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
        "returns_to": sorted(t.returns_to_origin),
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
