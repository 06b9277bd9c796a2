"""Deadlines and reference clocks (UNTOC 18(24); Egmont; the EU instruments a node applies).

There is no universal MLA deadline: the requesting side may set one, with its reason, and a
deployment configures *reference clocks* that apply to a workflow and legal basis (the EU
European Investigation Order: acknowledge in 7 days, decide in 30, execute in 90; Egmont:
reply within 30 business days). ``deadlines`` computes, from a case's history alone, every
deadline with its reason, due time, reminder time and status; nothing here reads the wall
clock: ``now`` is an argument, so tests control time instead of sleeping.

Invariants: a clock is paused while the requested side waits for additional information
(18(16)), and the pause extends its due time; a deadline stops at the first stopping event
after it started; a case that ends another way ends its deadlines ("ended", never overdue).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from broker.cases.fold import EventLike
from broker.cases.workflow import Workflow

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class Milestone:
    name: str
    title: str
    starts_on: frozenset[str]
    stops_on: frozenset[str]
    citation: str
    days: int = 0
    hours: int = 0
    business_days: int = 0
    remind_before_hours: float = 48.0
    side: str = "requested"
    """The side that must act before the deadline: its reminder goes to that side."""

    def due(self, start: dt.datetime) -> dt.datetime:
        due = start + dt.timedelta(days=self.days, hours=self.hours)
        return add_business_days(due, self.business_days) if self.business_days else due


@dataclass(frozen=True, slots=True)
class ReferenceClock:
    id: str
    title: str
    citation: str
    workflows: frozenset[str]
    legal_bases: frozenset[str] | None
    milestones: tuple[Milestone, ...]
    when: Mapping[str, Any] = field(default_factory=dict)
    """Facts of the case the clock needs, each equal to its value (``urgent``,
    ``information_access``): Directive (EU) 2023/977 art. 5(1) runs a different clock for an
    urgent request about directly accessible information."""

    def applies(
        self, workflow: str, legal_basis: str | None, facts: Mapping[str, Any] | None = None
    ) -> bool:
        if workflow not in self.workflows:
            return False
        known = facts or {}
        if any(known.get(name) != value for name, value in self.when.items()):
            return False
        return self.legal_bases is None or (legal_basis or "") in self.legal_bases


# Directive (EU) 2023/977 art. 5(1) (MLA.md, "reference clocks"): the requested Single Point
# of Contact provides the information within 8 hours (urgent, directly accessible), 3 days
# (urgent, indirectly accessible) or 7 days (every other request).
_INTEL_STOPS = ["respond", "refuse", "withdraw"]
_EU_2023_977: dict[str, Any] = {
    "eu-2023-977-urgent-direct": {
        "title": "Directive (EU) 2023/977: urgent request, directly accessible information",
        "citation": "Directive (EU) 2023/977 art. 5(1)(a)",
        "workflows": ["intel.request"],
        "legal_bases": None,
        "when": {"urgent": True, "information_access": "direct"},
        "milestones": [
            {
                "name": "provide",
                "title": "provide the requested information",
                "starts_on": ["submit"],
                "stops_on": _INTEL_STOPS,
                "hours": 8,
                "remind_before_hours": 2,
                "citation": "Directive (EU) 2023/977 art. 5(1)(a)",
            }
        ],
    },
    "eu-2023-977-urgent-indirect": {
        "title": "Directive (EU) 2023/977: urgent request, indirectly accessible information",
        "citation": "Directive (EU) 2023/977 art. 5(1)(b)",
        "workflows": ["intel.request"],
        "legal_bases": None,
        "when": {"urgent": True, "information_access": "indirect"},
        "milestones": [
            {
                "name": "provide",
                "title": "provide the requested information",
                "starts_on": ["submit"],
                "stops_on": _INTEL_STOPS,
                "days": 3,
                "remind_before_hours": 12,
                "citation": "Directive (EU) 2023/977 art. 5(1)(b)",
            }
        ],
    },
    "eu-2023-977": {
        "title": "Directive (EU) 2023/977: request",
        "citation": "Directive (EU) 2023/977 art. 5(1)(c)",
        "workflows": ["intel.request"],
        "legal_bases": None,
        "when": {"urgent": False},
        "milestones": [
            {
                "name": "provide",
                "title": "provide the requested information",
                "starts_on": ["submit"],
                "stops_on": _INTEL_STOPS,
                "days": 7,
                "remind_before_hours": 48,
                "citation": "Directive (EU) 2023/977 art. 5(1)(c)",
            }
        ],
    },
}

DEFAULT_CLOCKS: dict[str, Any] = {
    "eu-eio": {
        "title": "European Investigation Order",
        "citation": "Directive 2014/41/EU arts. 12, 16",
        "workflows": ["mla.request"],
        "legal_bases": ["eu-eio"],
        "milestones": [
            {
                "name": "acknowledge",
                "title": "acknowledge receipt",
                "starts_on": ["transmit"],
                "stops_on": ["acknowledge"],
                "days": 7,
                "remind_before_hours": 48,
                "citation": "Directive 2014/41/EU art. 16(1), Annex B",
            },
            {
                "name": "decide",
                "title": "decide on recognition and execution",
                "starts_on": ["acknowledge"],
                "stops_on": ["accept", "accept_conditions", "refuse"],
                "days": 30,
                "remind_before_hours": 120,
                "citation": "Directive 2014/41/EU art. 12(3)",
            },
            {
                "name": "execute",
                "title": "carry out the investigative measure",
                "starts_on": ["accept", "accept_conditions"],
                "stops_on": ["complete"],
                "days": 90,
                "remind_before_hours": 240,
                "citation": "Directive 2014/41/EU art. 12(4)",
            },
        ],
    },
    "egmont": {
        "title": "Egmont Group reply time",
        "citation": "Egmont Principles for Information Exchange",
        "workflows": ["fiu.request"],
        "legal_bases": None,
        "milestones": [
            {
                "name": "reply",
                "title": "at least an interim, partial or negative reply",
                "starts_on": ["submit"],
                "stops_on": ["respond", "refuse"],
                "business_days": 30,
                "remind_before_hours": 120,
                "citation": "Egmont Principles for Information Exchange",
            }
        ],
    },
    **_EU_2023_977,
}

# Where the requesting side's own deadline stops, per workflow.
REQUESTED_DEADLINE_STOPS: Mapping[str, frozenset[str]] = {
    "mla.request": frozenset({"complete", "refuse", "withdraw", "no_longer_needed"}),
    "fiu.request": frozenset({"respond", "refuse", "withdraw"}),
    "intel.request": frozenset(_INTEL_STOPS),
}
REQUESTED_DEADLINE_REMIND_HOURS = 72.0

# The notices ``due_actions`` raises, each a system event in the case's history, and the
# reminder of a follow-up that falls due (``broker.cases.scheduler.remind_follow_ups``).
NOTICE_KINDS = (
    "reminder",
    "escalation",
    "postponement_review",
    "confirmation_escalation",
    "retention_review",
    "follow_up_due",
)
REQUESTED_DEADLINE_TITLE = "deadline set by the requesting side"

# Who receives each notice as a ``notice`` message (broker.cases.service.notices), by kind:
# "acting" is the side a deadline's milestone names (``Milestone.side``), "other" the side
# across from it. A notice whose details name a ``side`` goes to that side; a kind not listed
# (a follow-up) goes to both parties; one listed with no sides is not delivered (a person's
# own act, already answered). The requested side receives nothing before the case is shared.
NOTICE_RECIPIENTS: Mapping[str, tuple[str, ...]] = {
    "reminder": ("acting",),
    "escalation": ("acting", "other"),
    "postponement_review": ("requested",),  # the side that postponed reviews (18(25))
    "confirmation_escalation": ("requesting",),  # it owes the written confirmation (18(14))
    "retention_review": ("requesting", "requested"),
    "progress_reply": ("requesting",),  # it asked (18(24))
    "retention_extended": (),
}
URGENT_NOTICES = frozenset({"escalation", "confirmation_escalation"})
"""Notices urgent in themselves (a deadline passed, an unconfirmed urgent request); every
notice of an urgent case is urgent too. Urgent messages are relayed and listed first."""

# The rule each notice comes from (domain/POLICY-RULES.md), and its citation when the
# event's details do not carry the deadline's own.
NOTICE_RULES: Mapping[str, tuple[str, str]] = {
    "reminder": ("P10", "UNTOC art. 18(24)"),
    "escalation": ("P10", "UNTOC art. 18(24)"),
    "postponement_review": ("P8", "UNTOC art. 18(25)"),
    "confirmation_escalation": ("P3", "UNTOC art. 18(14)"),
    "retention_review": ("P17", "LED art. 5"),
    "progress_reply": ("P10", "UNTOC art. 18(24)"),
}
# The detail that holds a notice's due date, first found; else the time it was raised.
NOTICE_DUE_FIELDS = ("due_at", "review_date", "retention_until", "until")


class ClockConfigError(ValueError):
    """A clocks file is malformed; the message names the clock and the field."""


def parse_clocks(data: Mapping[str, Any], source: str = "built-in") -> tuple[ReferenceClock, ...]:
    """Raises ClockConfigError."""
    out = []
    for clock_id, raw in data.items():
        where = f"{source}: clocks.{clock_id}"
        try:
            milestones = tuple(
                Milestone(
                    name=str(m["name"]),
                    title=str(m.get("title", m["name"])),
                    starts_on=frozenset(m["starts_on"]),
                    stops_on=frozenset(m["stops_on"]),
                    citation=str(m.get("citation", raw.get("citation", ""))),
                    days=int(m.get("days", 0)),
                    hours=int(m.get("hours", 0)),
                    business_days=int(m.get("business_days", 0)),
                    remind_before_hours=float(m.get("remind_before_hours", 48)),
                    side=_side(m.get("side", "requested")),
                )
                for m in raw["milestones"]
            )
            bases = raw.get("legal_bases")
            clock = ReferenceClock(
                id=str(clock_id),
                title=str(raw["title"]),
                citation=str(raw.get("citation", "")),
                workflows=frozenset(raw["workflows"]),
                legal_bases=None if bases is None else frozenset(bases),
                milestones=milestones,
                when=_when(raw.get("when") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClockConfigError(f"{where}: {exc!r}") from exc
        for m in clock.milestones:
            if not (m.days or m.hours or m.business_days):
                raise ClockConfigError(f"{where}: milestone {m.name} has no duration")
        out.append(clock)
    return tuple(out)


def _side(value: Any) -> str:
    if value not in ("requesting", "requested"):
        raise ValueError(f"side must be requesting or requested, not {value!r}")
    return str(value)


_WHEN_FACTS = {"urgent": (bool,), "information_access": (str,)}


def _when(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"when must be a mapping of case facts, not {value!r}")
    for name, wanted in value.items():
        if name not in _WHEN_FACTS:
            raise ValueError(f"when: unknown case fact {name!r} (one of {', '.join(_WHEN_FACTS)})")
        if not isinstance(wanted, _WHEN_FACTS[name]):
            raise TypeError(f"when.{name}: {wanted!r} is not a {_WHEN_FACTS[name][0].__name__}")
    return dict(value)


def load_clocks(path: Path | None) -> tuple[ReferenceClock, ...]:
    """The built-in clocks, or those of a YAML file ``{clocks: {id: {...}}}`` that replaces
    them. Raises ClockConfigError."""
    if path is None:
        return parse_clocks(DEFAULT_CLOCKS)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ClockConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("clocks"), dict):
        raise ClockConfigError(f"{path}: expected a mapping with a 'clocks' mapping")
    return parse_clocks(data["clocks"], str(path))


def add_business_days(start: dt.datetime, days: int) -> dt.datetime:
    """``start`` moved ``days`` working days (Monday to Friday) later."""
    current = start
    left = days
    while left > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


@dataclass(frozen=True, slots=True)
class Deadline:
    name: str
    title: str
    reason: str | None
    citation: str
    source: str
    started_at: dt.datetime
    due_at: dt.datetime
    remind_at: dt.datetime
    stopped_at: dt.datetime | None
    paused_seconds: float
    status: str  # running | paused | met | missed | overdue | ended
    side: str = "requested"  # the side that must act

    @property
    def open(self) -> bool:
        return self.status in ("running", "paused", "overdue")


def _pauses(
    workflow: Workflow, events: Sequence[EventLike], now: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    since: dt.datetime | None = None
    state = workflow.initial
    origin: str | None = None  # where an open consultation began
    for ev in events:
        t = workflow.transition(state, ev.event)
        if t is None:
            continue
        if t.pauses_clock and since is None:
            since = ev.at
        if t.resumes_clock and since is not None:
            out.append((since, ev.at))
            since = None
        state, origin = t.after(state, origin)
    if since is not None:
        out.append((since, now))
    return out


def _overlap(
    pauses: Iterable[tuple[dt.datetime, dt.datetime]], a: dt.datetime, b: dt.datetime
) -> float:
    total = 0.0
    for start, end in pauses:
        lo, hi = max(start, a), min(end, b)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def _final_at(workflow: Workflow, events: Sequence[EventLike]) -> dt.datetime | None:
    state = workflow.initial
    origin: str | None = None  # where an open consultation began
    final_at = None
    for ev in events:
        t = workflow.transition(state, ev.event)
        if t is None:
            continue
        state, origin = t.after(state, origin)
        if state in workflow.finals and final_at is None:
            final_at = ev.at
    return final_at


def _status(
    *, due: dt.datetime, stopped: dt.datetime | None, ended: bool, paused: bool, now: dt.datetime
) -> str:
    if stopped is not None:
        return "met" if stopped <= due else "missed"
    if ended:
        return "ended"
    if paused:
        return "paused"
    return "overdue" if now > due else "running"


def deadlines(
    *,
    workflow: Workflow,
    events: Sequence[EventLike],
    clocks: Sequence[ReferenceClock],
    legal_basis: str | None,
    requested: tuple[dt.datetime, str | None] | None,
    now: dt.datetime,
    facts: Mapping[str, Any] | None = None,
) -> list[Deadline]:
    """Every deadline of a case, computed from its history (``events`` in order); ``facts``
    are the case's facts a clock's ``when`` looks at."""
    pauses = _pauses(workflow, events, now)
    paused_now = _open_pause(workflow, events)
    final_at = _final_at(workflow, events)
    out: list[Deadline] = []
    for clock in clocks:
        if not clock.applies(workflow.name, legal_basis, facts):
            continue
        for m in clock.milestones:
            started = next((ev.at for ev in events if ev.event in m.starts_on), None)
            if started is None:
                continue
            stopped = next(
                (ev.at for ev in events if ev.event in m.stops_on and ev.at >= started), None
            )
            end = stopped or final_at or now
            paused = _overlap(pauses, started, end)
            due = m.due(started) + dt.timedelta(seconds=paused)
            out.append(
                Deadline(
                    name=m.name,
                    title=m.title,
                    reason=f"{clock.title}: {m.title}",
                    citation=m.citation,
                    source=clock.id,
                    started_at=started,
                    due_at=due,
                    remind_at=due - dt.timedelta(hours=m.remind_before_hours),
                    stopped_at=stopped,
                    paused_seconds=paused,
                    status=_status(
                        due=due,
                        stopped=stopped,
                        ended=final_at is not None,
                        paused=paused_now and stopped is None,
                        now=now,
                    ),
                    side=m.side,
                )
            )
    if requested is not None and workflow.sharing_event is not None:
        due, reason = requested
        started = next((ev.at for ev in events if ev.event == workflow.sharing_event), None)
        if started is not None:
            stops = REQUESTED_DEADLINE_STOPS.get(workflow.name, frozenset())
            stopped = next((ev.at for ev in events if ev.event in stops), None)
            out.append(
                Deadline(
                    name="requested",
                    title=REQUESTED_DEADLINE_TITLE,
                    reason=reason,
                    citation="UNTOC art. 18(24)",
                    source="requesting side",
                    started_at=started,
                    due_at=due,
                    remind_at=due - dt.timedelta(hours=REQUESTED_DEADLINE_REMIND_HOURS),
                    stopped_at=stopped,
                    paused_seconds=0.0,
                    status=_status(
                        due=due, stopped=stopped, ended=final_at is not None, paused=False, now=now
                    ),
                )
            )
    return out


def _open_pause(workflow: Workflow, events: Sequence[EventLike]) -> bool:
    state = workflow.initial
    origin: str | None = None  # where an open consultation began
    paused = False
    for ev in events:
        t = workflow.transition(state, ev.event)
        if t is None:
            continue
        if t.pauses_clock:
            paused = True
        if t.resumes_clock:
            paused = False
        state, origin = t.after(state, origin)
    return paused


# --- what the scheduler does next ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """Something the node's timers must do on a case at ``at``: raise a notice (``reminder``,
    ``escalation``, ``postponement_review``, ``confirmation_escalation``) or fire the
    system's ``expire_retention``. ``key`` makes each one happen once."""

    at: dt.datetime
    kind: str
    key: str
    detail: Mapping[str, Any]


def _raised(events: Sequence[EventLike]) -> set[tuple[str, str]]:
    return {
        (str(ev.details.get("notice")), str(ev.details.get("key")))
        for ev in events
        if ev.details.get("notice")
    }


def retention_extensions(events: Sequence[EventLike]) -> list[dt.datetime]:
    """The deadlines reasoned reviews set on a case (its ``retention_extended`` notices)."""
    return [
        dt.datetime.fromisoformat(str(ev.details["until"]))
        for ev in events
        if ev.details.get("notice") == "retention_extended" and ev.details.get("until")
    ]


def due_actions(
    *,
    workflow: Workflow,
    events: Sequence[EventLike],
    state: str,
    records: frozenset[str],
    review_date: dt.datetime | None,
    urgent: bool,
    initiated_by: str,
    shared_at: dt.datetime | None,
    open_deadlines: Sequence[Deadline],
    retention: dt.timedelta,
    urgent_every: dt.timedelta,
    review: dt.timedelta | None = None,
    terms: Mapping[str, Any] | None = None,
) -> list[Due]:
    """Everything still to do on a case, each with the time it falls due, earliest first.

    - a reminder at each open deadline's ``remind_at`` and an escalation at its ``due_at``
      (P10, 18(24)), once each;
    - a review notice on a postponement's review date (P8, 18(25));
    - an escalation every ``urgent_every`` after an urgent request made orally or through
      INTERPOL was shared, until its written confirmation is on record (P3, 18(14));
    - ``expire_retention`` when a case has been in a retained final state for ``retention``,
      or at the later deadline a reasoned review set (a ``retention_extended`` notice, P17);
    - a ``retention_review`` reminder ``review`` before that deadline, once per deadline;
    - the event its table fires at a date of the case's ``terms`` (``fires_at_term``: a joint
      investigation team's ``expire_team`` at its expiry, UNTOC art. 19), at that date.
    """
    raised = _raised(events)
    out: list[Due] = []
    for d in open_deadlines:
        if d.status == "paused":
            continue
        key = f"{d.source}:{d.name}"
        info = {
            "deadline": d.name,
            "source": d.source,
            "due_at": d.due_at.isoformat(),
            "citation": d.citation,
            "side": d.side,
        }
        if ("reminder", key) not in raised and d.status == "running":
            out.append(Due(d.remind_at, "reminder", key, info))
        if ("escalation", key) not in raised:
            out.append(Due(d.due_at, "escalation", key, info))
    if state == "POSTPONED" and review_date is not None:
        key = review_date.isoformat()
        if ("postponement_review", key) not in raised:
            out.append(Due(review_date, "postponement_review", key, {"review_date": key}))
    if (
        urgent
        and initiated_by != "written"
        and shared_at is not None
        and "written_confirmation" not in records
        and state not in workflow.finals
    ):
        done = sum(1 for kind, _ in raised if kind == "confirmation_escalation")
        out.append(
            Due(
                shared_at + urgent_every * (done + 1),
                "confirmation_escalation",
                str(done + 1),
                {"escalation": done + 1, "initiated_by": initiated_by},
            )
        )
    timed = workflow.timed_from(state)
    if timed is not None and timed.fires_at_term and terms and terms.get(timed.fires_at_term):
        when = dt.datetime.fromisoformat(str(terms[timed.fires_at_term]))
        out.append(
            Due(when, timed.event, when.isoformat(), {timed.fires_at_term: when.isoformat()})
        )
    expiry = workflow.erasing_from(state)
    if expiry is not None:
        final_at = _final_at(workflow, events)
        if final_at is not None:
            deadline = max([final_at + retention, *retention_extensions(events)])
            out.append(Due(deadline, expiry.event, state, {}))
            key = deadline.isoformat()
            if review is not None and ("retention_review", key) not in raised:
                detail = {"retention_until": key}
                out.append(Due(deadline - review, "retention_review", key, detail))
    return sorted(out, key=lambda d: d.at)
