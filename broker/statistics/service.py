"""The indicators a national strategy monitors, from metadata only, under one filter.

Invariants:
- Metadata only: workflow, state, participants and their jurisdiction, urgency, the types
  of assistance asked (``cases.assistance_types``), times, deadlines, event names, refusal
  ground codes, policy rule ids, message types and statuses. Never a request, a reason, a
  payload or a person.
- Every count is a SQL ``GROUP BY`` (or ``count``) query; turnaround reads one start and one
  end time per case (each a ``min`` per case in SQL) and takes the median and the 90th
  percentile of those durations in Python, since SQLite has no percentile function.
- A count from 1 to ``suppress_below - 1`` is reported as the string ``"<N>"`` (N the
  threshold), and a median or percentile drawn from fewer than N cases as ``None``, so the
  page, its CSV and the API show the same thing and a small State's one case cannot be
  singled out. Zero is shown: it identifies nobody.

The filter: the period selects cases by ``opened_at``, messages by ``created_at``, onward
consents by ``requested_at``, dead letters and policy refusals by when they happened (dates
are whole UTC days, both ends included). The State is a participant's jurisdiction on either
side. The type is the case's workflow and urgency its ``urgent`` flag; messages are filtered
by them through their case (a message outside any case then drops out), while onward
consents, dead letters and policy refusals have no case type or urgency and ignore them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from broker.cases.models import Case, CaseEvent
from broker.cases.statistics import REFUSALS, SPANS, percentile
from broker.cases.tables import WORKFLOWS
from broker.consents.models import Consent, ConsentStatus
from broker.core.errors import SchemaViolation
from broker.messages.models import Message, MessageStatus
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind
from broker.participants.models import Participant

URGENCIES = ("urgent", "normal")
# The event that answers a request, per workflow: "answered within the requested deadline"
# compares the first of them with the case's ``deadline``.
ANSWERS: Mapping[str, frozenset[str]] = {
    "mla.request": frozenset({"complete", "refuse"}),
    "fiu.request": frozenset({"respond", "refuse"}),
    "consent": frozenset({"grant_consent", "refuse_consent"}),
}
_STATE = re.compile(r"^[A-Za-z]{2}$")

Count = int | str


class BadStatisticsFilter(SchemaViolation):
    """A filter value the statistics cannot use; ``errors`` lists each field and why."""

    slug, title = "bad-statistics-filter", "A statistics filter is not valid"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
        self.errors = errors

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return {**super().problem(instance), "errors": self.errors}


@dataclass(frozen=True, slots=True)
class StatisticsFilter:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    state: str | None = None
    type: str | None = None
    urgency: str | None = None

    def query(self) -> dict[str, str]:
        """The filter as query parameters (what a link keeping it carries)."""
        values = {
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "state": self.state,
            "type": self.type,
            "urgency": self.urgency,
        }
        return {k: v for k, v in values.items() if v}

    def active(self) -> bool:
        return bool(self.query())

    def between(self, column: Any) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.date_from:
            out.append(column >= dt.datetime.combine(self.date_from, dt.time(), dt.UTC))
        if self.date_to:
            end = dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
            out.append(column < end)
        return out


def parse_filter(
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    state: str | None = None,
    type: str | None = None,
    urgency: str | None = None,
) -> StatisticsFilter:
    """The filter from its query parameters (empty means no filter).

    Raises BadStatisticsFilter naming every wrong field: a date that is not YYYY-MM-DD, a
    period that ends before it starts, a State that is not a two-letter jurisdiction (ISO
    3166 code, in either case), an
    unknown workflow, an urgency other than ``urgent`` or ``normal``."""
    errors: list[dict[str, str]] = []

    def wrong(name: str, message: str, code: str) -> None:
        errors.append({"field": name, "message": message, "code": code})

    def day(name: str, value: str | None) -> dt.date | None:
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            wrong(name, "not a date (YYYY-MM-DD)", "date")
            return None

    start, end = day("from", date_from), day("to", date_to)
    if start and end and end < start:
        errors.append(
            {"field": "to", "message": "the period ends before it starts", "code": "order"}
        )
    if state and not _STATE.match(state):
        errors.append(
            {"field": "state", "message": "not a two-letter jurisdiction", "code": "state"}
        )
    if type and type not in WORKFLOWS:
        wrong("type", "not a known workflow", "type")
    if urgency and urgency not in URGENCIES:
        wrong("urgency", "urgent or normal", "urgency")
    if errors:
        raise BadStatisticsFilter(errors)
    return StatisticsFilter(
        start, end, state.upper() if state else None, type or None, urgency or None
    )


@dataclass(slots=True)
class Suppressor:
    """Shows a count from 1 to ``below - 1`` as ``"<below>"`` (and counts how many it hid);
    a median or percentile of fewer than ``below`` durations as None."""

    below: int
    suppressed: int = field(default=0)

    def __call__(self, n: int) -> Count:
        if 0 < n < self.below:
            self.suppressed += 1
            return f"<{self.below}"
        return n

    def turnaround(self, hours: list[float]) -> dict[str, Any]:
        enough = len(hours) >= self.below
        return {
            "count": self(len(hours)),
            "median": percentile(hours, 0.5) if enough else None,
            "p90": percentile(hours, 0.9) if enough else None,
        }


def _hours(a: dt.datetime, b: dt.datetime) -> float:
    return round((b - a).total_seconds() / 3600, 3)


def _month(session: AsyncSession, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _filtered_cases(f: StatisticsFilter) -> Subquery:
    """The cases the filter selects, with both sides' jurisdictions."""
    asking, asked = aliased(Participant), aliased(Participant)
    q = (
        select(
            Case.id,
            Case.workflow,
            Case.state,
            Case.urgent,
            Case.requesting_id,
            Case.requested_id,
            Case.opened_at,
            Case.shared_at,
            Case.deadline,
            Case.next_due_at,
            cast(Case.assistance_types, Text).label("assistance_types"),
            asking.jurisdiction.label("requesting_state"),
            asked.jurisdiction.label("requested_state"),
        )
        .join(asking, asking.id == Case.requesting_id)
        .join(asked, asked.id == Case.requested_id)
        .where(*f.between(Case.opened_at))
    )
    if f.state:
        q = q.where(or_(asking.jurisdiction == f.state, asked.jurisdiction == f.state))
    if f.type:
        q = q.where(Case.workflow == f.type)
    if f.urgency:
        q = q.where(Case.urgent.is_(f.urgency == "urgent"))
    return q.subquery("c")


async def _rows(session: AsyncSession, q: Any) -> list[Any]:
    return list((await session.execute(q)).all())


async def _case_figures(
    session: AsyncSession, c: Subquery, show: Suppressor, now: dt.datetime
) -> dict[str, Any]:
    by_state = await _rows(
        session,
        select(c.c.workflow, c.c.state, func.count())
        .group_by(c.c.workflow, c.c.state)
        .order_by(c.c.workflow, c.c.state),
    )
    by_parties = await _rows(
        session,
        select(c.c.workflow, c.c.requesting_id, c.c.requested_id, func.count())
        .where(c.c.shared_at.is_not(None))
        .group_by(c.c.workflow, c.c.requesting_id, c.c.requested_id)
        .order_by(c.c.workflow, c.c.requesting_id, c.c.requested_id),
    )
    by_type = await _rows(
        session,
        select(c.c.workflow, func.count()).group_by(c.c.workflow).order_by(c.c.workflow),
    )
    by_pair = await _rows(
        session,
        select(c.c.requesting_state, c.c.requested_state, func.count())
        .group_by(c.c.requesting_state, c.c.requested_state)
        .order_by(c.c.requesting_state, c.c.requested_state),
    )
    # Identical lists of assistance types are grouped in SQL, then each list's types counted.
    by_assistance_lists = await _rows(
        session,
        select(c.c.assistance_types, func.count())
        .where(c.c.workflow == "mla.request")
        .group_by(c.c.assistance_types),
    )
    assistance: Counter[str] = Counter()
    for types, n in by_assistance_lists:
        for kind in orjson.loads(types or "[]") or ["not stated"]:
            assistance[kind] += n
    month = _month(session, c.c.opened_at).label("month")
    by_month = await _rows(session, select(month, func.count()).group_by(month).order_by(month))
    sent: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for asking, asked, n in by_pair:
        sent[asking] += n
        received[asked] += n
    states = sorted(set(sent) | set(received))
    finals = [
        and_(c.c.workflow == w.name, c.c.state.not_in(sorted(w.finals))) for w in WORKFLOWS.values()
    ]
    overdue = (
        await session.execute(
            select(func.count()).where(
                c.c.next_due_at.is_not(None), c.c.next_due_at < now, or_(false(), *finals)
            )
        )
    ).scalar_one()
    postponements = (
        await session.execute(
            select(func.count())
            .select_from(CaseEvent)
            .join(c, c.c.id == CaseEvent.case_id)
            .where(CaseEvent.event == "postpone")
        )
    ).scalar_one()
    consent_states = {s: n for w, s, n in by_state if w == "consent"}
    return {
        "cases_by_state": [{"workflow": w, "state": s, "count": show(n)} for w, s, n in by_state],
        "cases_by_parties": [
            {"workflow": w, "requesting": a, "requested": b, "count": show(n)}
            for w, a, b, n in by_parties
        ],
        "cases_by_type": [{"workflow": w, "count": show(n)} for w, n in by_type],
        "cases_by_state_pair": [
            {"requesting_state": a, "requested_state": b, "count": show(n)} for a, b, n in by_pair
        ],
        "cases_by_month": [{"month": m, "count": show(n)} for m, n in by_month],
        "cases_by_assistance_type": [
            {"assistance_type": k, "count": show(n)} for k, n in sorted(assistance.items())
        ],
        "requests_by_state": [
            {"state": s, "sent": show(sent[s]), "received": show(received[s])} for s in states
        ],
        "postponements": show(postponements),
        "currently_postponed": show(sum(n for _w, s, n in by_state if s == "POSTPONED")),
        "overdue_cases": show(overdue),
        "consents": {
            "requested": show(consent_states.get("CONSENT_REQUESTED", 0)),
            "granted": show(consent_states.get("CONSENT_GRANTED", 0)),
            "refused": show(consent_states.get("CONSENT_REFUSED", 0)),
        },
    }


async def _turnaround(session: AsyncSession, c: Subquery, show: Suppressor) -> dict[str, Any]:
    overall: dict[str, list[float]] = {s.name: [] for s in SPANS}
    pairs: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for s in SPANS:
        # The filtered cases are joined once, outside: inside this subquery as well, they
        # make PostgreSQL's planner nest loops over both copies.
        begun = (
            select(CaseEvent.case_id, func.min(CaseEvent.at).label("begun"))
            .where(CaseEvent.event.in_(sorted(s.start)))
            .group_by(CaseEvent.case_id)
            .subquery("b")
        )
        ended = aliased(CaseEvent)
        rows = await _rows(
            session,
            select(c.c.requesting_state, c.c.requested_state, begun.c.begun, func.min(ended.at))
            .join(begun, begun.c.case_id == c.c.id)
            .join(
                ended,
                and_(
                    ended.case_id == begun.c.case_id,
                    ended.event.in_(sorted(s.end)),
                    ended.at >= begun.c.begun,
                ),
            )
            .where(c.c.workflow == s.workflow)
            .group_by(c.c.id, c.c.requesting_state, c.c.requested_state, begun.c.begun),
        )
        for asking, asked, start, end in rows:
            hours = _hours(_aware(start), _aware(end))
            overall[s.name].append(hours)
            pairs[(s.name, asking, asked)].append(hours)
    return {
        "turnaround_hours": [
            {"indicator": s.name, **show.turnaround(overall[s.name])} for s in SPANS
        ],
        "turnaround_by_state_pair": [
            {"indicator": i, "requesting_state": a, "requested_state": b, **show.turnaround(h)}
            for (i, a, b), h in sorted(pairs.items())
        ],
    }


def _aware(value: Any) -> dt.datetime:
    # ``min()`` over a UTCDateTime column comes back untyped on SQLite (a string or naive).
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def _timeliness(session: AsyncSession, c: Subquery, show: Suppressor) -> list[Any]:
    out = []
    for workflow, events in ANSWERS.items():
        answered = (
            select(CaseEvent.case_id, func.min(CaseEvent.at).label("at"))
            .where(CaseEvent.event.in_(sorted(events)))
            .group_by(CaseEvent.case_id)
            .subquery("a")
        )
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.count(answered.c.at),
                    func.coalesce(func.sum(case((answered.c.at <= c.c.deadline, 1), else_=0)), 0),
                )
                .select_from(c)
                .outerjoin(answered, answered.c.case_id == c.c.id)
                .where(c.c.workflow == workflow, c.c.deadline.is_not(None))
            )
        ).one()
        with_deadline, done, in_time = int(row[0]), int(row[1]), int(row[2])
        if not with_deadline:
            continue
        out.append(
            {
                "workflow": workflow,
                "with_deadline": show(with_deadline),
                "answered": show(done),
                "answered_in_time": show(in_time),
                "share_in_time": (round(in_time / done, 3) if done >= max(show.below, 1) else None),
            }
        )
    return out


async def _refusals_by_ground(
    session: AsyncSession, c: Subquery, show: Suppressor
) -> list[dict[str, Any]]:
    # Only the refusal events are read (their ground codes sit in a JSON list).
    rows = await _rows(
        session,
        select(c.c.workflow, CaseEvent.details)
        .join(c, c.c.id == CaseEvent.case_id)
        .where(CaseEvent.event.in_(sorted(REFUSALS))),
    )
    grounds: Counter[tuple[str, str]] = Counter()
    for workflow, details in rows:
        for ground in (details or {}).get("grounds", []) or ["none given"]:
            grounds[(workflow, ground)] += 1
    return [{"workflow": w, "ground": g, "count": show(n)} for (w, g), n in sorted(grounds.items())]


def _message_where(f: StatisticsFilter, sender: Any, recipient: Any) -> list[Any]:
    where: list[Any] = [*f.between(Message.created_at)]
    if f.state:
        where.append(or_(sender.jurisdiction == f.state, recipient.jurisdiction == f.state))
    if f.type or f.urgency:
        of_cases = select(Case.id)
        if f.type:
            of_cases = of_cases.where(Case.workflow == f.type)
        if f.urgency:
            of_cases = of_cases.where(Case.urgent.is_(f.urgency == "urgent"))
        where.append(Message.case_id.in_(of_cases))
    return where


async def _message_figures(
    session: AsyncSession, f: StatisticsFilter, show: Suppressor
) -> dict[str, Any]:
    sender, recipient = aliased(Participant), aliased(Participant)

    def base(*columns: Any) -> Select[Any]:
        return (
            select(*columns)
            .select_from(Message)
            .join(sender, sender.id == Message.sender_id)
            .join(recipient, recipient.id == Message.recipient_id)
            .where(*_message_where(f, sender, recipient))
        )

    by_type = await _rows(
        session,
        base(Message.type, func.count()).group_by(Message.type).order_by(Message.type),
    )
    pair = (sender.jurisdiction, recipient.jurisdiction)
    by_pair = await _rows(session, base(*pair, func.count()).group_by(*pair).order_by(*pair))
    month = _month(session, Message.created_at).label("month")
    by_month = await _rows(session, base(month, func.count()).group_by(month).order_by(month))
    dead = await _rows(
        session,
        base(Message.type, func.count())
        .where(Message.status == MessageStatus.DEAD_LETTERED)
        .group_by(Message.type)
        .order_by(Message.type),
    )
    return {
        "messages_by_type": [{"type": t, "count": show(n)} for t, n in by_type],
        "messages_by_state_pair": [
            {"sender_state": a, "recipient_state": b, "count": show(n)} for a, b, n in by_pair
        ],
        "messages_by_month": [{"month": m, "count": show(n)} for m, n in by_month],
        "dead_letters": show(sum(n for _t, n in dead)),
        "dead_letters_by_type": [{"type": t, "count": show(n)} for t, n in dead],
    }


async def _onward_consents(
    session: AsyncSession, f: StatisticsFilter, show: Suppressor
) -> dict[str, Any]:
    provider, requester = aliased(Participant), aliased(Participant)
    where: list[Any] = [*f.between(Consent.requested_at)]
    if f.state:
        where.append(or_(provider.jurisdiction == f.state, requester.jurisdiction == f.state))
    rows = await _rows(
        session,
        select(Consent.status, Consent.requested_at, Consent.answered_at)
        .join(provider, provider.id == Consent.provider_id)
        .join(requester, requester.id == Consent.requester_id)
        .where(*where),
    )
    statuses = Counter(status for status, _a, _b in rows)
    hours = [_hours(asked, answered) for _s, asked, answered in rows if answered is not None]
    return {
        "requested": show(len(rows)),
        "granted": show(statuses[ConsentStatus.GRANTED]),
        "refused": show(statuses[ConsentStatus.REFUSED]),
        "pending": show(statuses[ConsentStatus.REQUESTED]),
        "turnaround_hours": show.turnaround(hours),
    }


async def _refusals_by_rule(
    session: AsyncSession, f: StatisticsFilter, show: Suppressor
) -> list[dict[str, Any]]:
    # A refused message is not stored: its audit leaf is the only record, with the rule ids.
    # Only those leaves are read, and only their sender, recipient and rule ids are used.
    leaves = await _rows(
        session,
        select(AuditEvent.leaf).where(
            AuditEvent.kind == AuditKind.MESSAGE_REFUSED, *f.between(AuditEvent.created_at)
        ),
    )
    jurisdictions: dict[str, str] = dict(
        (await session.execute(select(Participant.id, Participant.jurisdiction))).all()
    )
    rules: Counter[str] = Counter()
    for (leaf,) in leaves:
        fields = orjson.loads(leaf)
        if f.state and f.state not in {
            jurisdictions.get(fields.get("sender", "")),
            jurisdictions.get(fields.get("recipient", "")),
        }:
            continue
        for rule in fields.get("policy_rules") or ["none given"]:
            rules[rule] += 1
    return [{"rule": r, "count": show(n)} for r, n in sorted(rules.items())]


async def statistics(
    session: AsyncSession, *, now: dt.datetime, where: StatisticsFilter, suppress_below: int
) -> dict[str, Any]:
    """Every indicator under ``where``, counts below ``suppress_below`` suppressed (module
    docstring). Raises nothing of its own: ``parse_filter`` checked the filter."""
    show = Suppressor(suppress_below)
    c = _filtered_cases(where)
    figures: dict[str, Any] = {
        "generated_at": now,
        "suppress_below": suppress_below,
        "filters": {
            "date_from": where.date_from,
            "date_to": where.date_to,
            "state": where.state,
            "type": where.type,
            "urgency": where.urgency,
        },
    }
    figures.update(await _case_figures(session, c, show, now))
    figures.update(await _turnaround(session, c, show))
    figures["timeliness"] = await _timeliness(session, c, show)
    figures["refusals_by_ground"] = await _refusals_by_ground(session, c, show)
    figures["refusals_by_rule"] = await _refusals_by_rule(session, where, show)
    figures.update(await _message_figures(session, where, show))
    figures["onward_consents"] = await _onward_consents(session, where, show)
    figures["suppressed_cells"] = show.suppressed
    return figures
