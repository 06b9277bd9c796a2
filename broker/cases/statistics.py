"""Monitoring indicators for oversight, from case metadata only.

Counts by workflow, state and pair of participants; turnaround (median and 90th percentile,
in hours) from transmission to receipt, receipt to decision, decision to execution, FIU
submission to first response, and consent request to answer; refusals by ground;
postponements; overdue cases. Everything is computed from the ``cases`` rows and the event
names, times and ground codes of ``case_events``: no request, no reasons, no content.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.models import Case, CaseEvent
from broker.cases.tables import WORKFLOWS


@dataclass(frozen=True, slots=True)
class Span:
    """A turnaround indicator: from the first ``start`` event to the first ``end`` after it."""

    name: str
    workflow: str
    start: frozenset[str]
    end: frozenset[str]


SPANS = (
    Span(
        "mla.transmission_to_receipt",
        "mla.request",
        frozenset({"transmit"}),
        frozenset({"acknowledge"}),
    ),
    Span(
        "mla.receipt_to_decision",
        "mla.request",
        frozenset({"acknowledge"}),
        frozenset({"accept", "accept_conditions", "refuse"}),
    ),
    Span(
        "mla.decision_to_execution",
        "mla.request",
        frozenset({"accept", "accept_conditions"}),
        frozenset({"complete"}),
    ),
    Span(
        "mla.transmission_to_execution",
        "mla.request",
        frozenset({"transmit"}),
        frozenset({"complete"}),
    ),
    Span(
        "fiu.submission_to_first_response",
        "fiu.request",
        frozenset({"submit"}),
        frozenset({"respond", "refuse"}),
    ),
    Span(
        "consent.request_to_answer",
        "consent",
        frozenset({"request_consent", "use_extension_request"}),
        frozenset({"grant_consent", "refuse_consent"}),
    ),
)
REFUSALS = frozenset({"refuse", "refuse_consent"})


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _hours(a: dt.datetime, b: dt.datetime) -> float:
    return round((b - a).total_seconds() / 3600, 3)


def spans(events: Iterable[tuple[str, str, str, dt.datetime]]) -> dict[str, list[float]]:
    """Durations in hours per indicator, from ``(case_id, workflow, event, at)`` in order."""
    firsts: dict[tuple[str, str], dict[str, dt.datetime]] = defaultdict(dict)
    for case_id, workflow, event, at in events:
        firsts[(case_id, workflow)].setdefault(event, at)
    out: dict[str, list[float]] = {s.name: [] for s in SPANS}
    for (_, workflow), first in firsts.items():
        for s in SPANS:
            if s.workflow != workflow:
                continue
            starts = [first[e] for e in s.start if e in first]
            if not starts:
                continue
            begun = min(starts)
            ends = [first[e] for e in s.end if e in first and first[e] >= begun]
            if ends:
                out[s.name].append(_hours(begun, min(ends)))
    return out


async def statistics(session: AsyncSession, *, now: dt.datetime) -> dict[str, object]:
    by_state = (
        await session.execute(
            select(Case.workflow, Case.state, func.count())
            .group_by(Case.workflow, Case.state)
            .order_by(Case.workflow, Case.state)
        )
    ).all()
    by_pair = (
        await session.execute(
            select(Case.workflow, Case.requesting_id, Case.requested_id, func.count())
            .where(Case.shared_at.is_not(None))
            .group_by(Case.workflow, Case.requesting_id, Case.requested_id)
            .order_by(Case.workflow, Case.requesting_id, Case.requested_id)
        )
    ).all()
    rows = (
        await session.execute(
            select(
                CaseEvent.case_id, Case.workflow, CaseEvent.event, CaseEvent.at, CaseEvent.details
            )
            .join(Case, Case.id == CaseEvent.case_id)
            .order_by(CaseEvent.case_id, CaseEvent.seq)
        )
    ).all()
    durations = spans((r.case_id, r.workflow, r.event, r.at) for r in rows)
    grounds: Counter[tuple[str, str]] = Counter()
    postponements = 0
    for r in rows:
        if r.event in REFUSALS:
            for ground in r.details.get("grounds", []) or ["none given"]:
                grounds[(r.workflow, ground)] += 1
        if r.event == "postpone":
            postponements += 1
    overdue = 0
    open_cases = (await session.execute(select(Case.workflow, Case.state, Case.next_due_at))).all()
    for workflow, state, due in open_cases:
        if due is not None and due < now and state not in WORKFLOWS[workflow].finals:
            overdue += 1
    consents = {state: count for workflow, state, count in by_state if workflow == "consent"}
    return {
        "generated_at": now,
        "cases_by_state": [{"workflow": w, "state": s, "count": c} for w, s, c in by_state],
        "cases_by_parties": [
            {"workflow": w, "requesting": a, "requested": b, "count": c} for w, a, b, c in by_pair
        ],
        "turnaround_hours": [
            {
                "indicator": s.name,
                "count": len(durations[s.name]),
                "median": percentile(durations[s.name], 0.5),
                "p90": percentile(durations[s.name], 0.9),
            }
            for s in SPANS
        ],
        "refusals_by_ground": [
            {"workflow": w, "ground": g, "count": c} for (w, g), c in sorted(grounds.items())
        ],
        "postponements": postponements,
        "currently_postponed": sum(c for w, s, c in by_state if s == "POSTPONED"),
        "overdue_cases": overdue,
        "consents": {
            "requested": consents.get("CONSENT_REQUESTED", 0),
            "granted": consents.get("CONSENT_GRANTED", 0),
            "refused": consents.get("CONSENT_REFUSED", 0),
        },
    }
