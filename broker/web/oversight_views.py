"""Oversight's pages: the statistics (charts beside their tables, and a CSV of the same
figures) and the consultations report (who read which content, when and why; LED art. 25).

Invariants:
- Both read the same services as the API (``broker.statistics.statistics``,
  ``broker.oversight.service.list_consultations``), for the role ``oversight`` only.
- The statistics page, its CSV and ``GET /v1/oversight/statistics`` show the same figures,
  suppressed counts included: the page's tables and the CSV are built from the one report
  by ``SECTIONS``.
- The consultations report never shows content: only the leaf's metadata and justification.
- A bad filter is a 422 page with an error summary that links to each wrong field, never a 500.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from broker.accounts.models import Account
from broker.cases.tables import WORKFLOWS
from broker.http import SessionDep, SettingsDep
from broker.oversight.service import EXPORT_CHUNK, Consultation, list_consultations
from broker.participants.service import list_participants
from broker.statistics import BadStatisticsFilter, StatisticsFilter, parse_filter, statistics
from broker.statistics.service import URGENCIES
from broker.web.case_views import ClockDep
from broker.web.charts import bar_chart
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import person_with, router

Overseeing = Annotated[WebUser, Depends(person_with("oversight"))]
Param = Annotated[str | None, Query(max_length=64)]
DateFrom = Annotated[str | None, Query(alias="from", max_length=10)]
DateTo = Annotated[str | None, Query(alias="to", max_length=10)]


@dataclass(frozen=True, slots=True)
class Section:
    """One table of the statistics page (and its CSV rows): ``dims`` name the rows, ``measures``
    are the figures; ``chart`` is the measure drawn as bars, if any."""

    key: str
    dims: tuple[str, ...]
    measures: tuple[str, ...]
    chart: str | None = None


SECTIONS = (
    Section("summary", ("indicator",), ("count",)),
    Section("cases_by_type", ("workflow",), ("count",), "count"),
    Section("cases_by_state_pair", ("requesting_state", "requested_state"), ("count",), "count"),
    Section("requests_by_state", ("state",), ("sent", "received")),
    Section("cases_by_month", ("month",), ("count",), "count"),
    Section("cases_by_assistance_type", ("assistance_type",), ("count",), "count"),
    Section("cases_by_state", ("workflow", "state"), ("count",)),
    Section(
        "timeliness",
        ("workflow",),
        ("with_deadline", "answered", "answered_in_time", "share_in_time"),
    ),
    Section("turnaround_hours", ("indicator",), ("count", "median", "p90"), "median"),
    Section(
        "turnaround_by_state_pair",
        ("indicator", "requesting_state", "requested_state"),
        ("count", "median", "p90"),
    ),
    Section("refusals_by_ground", ("workflow", "ground"), ("count",), "count"),
    Section("refusals_by_rule", ("rule",), ("count",), "count"),
    Section("messages_by_type", ("type",), ("count",), "count"),
    Section("messages_by_state_pair", ("sender_state", "recipient_state"), ("count",), "count"),
    Section("messages_by_month", ("month",), ("count",), "count"),
    Section("dead_letters_by_type", ("type",), ("count",)),
)
ONWARD_INDICATOR = "onward_consent.request_to_answer"
SUMMARY = (
    ("overdue_cases", ("overdue_cases",)),
    ("postponements", ("postponements",)),
    ("currently_postponed", ("currently_postponed",)),
    ("consent_cases_requested", ("consents", "requested")),
    ("consent_cases_granted", ("consents", "granted")),
    ("consent_cases_refused", ("consents", "refused")),
    ("onward_consents_requested", ("onward_consents", "requested")),
    ("onward_consents_granted", ("onward_consents", "granted")),
    ("onward_consents_refused", ("onward_consents", "refused")),
    ("onward_consents_pending", ("onward_consents", "pending")),
    ("dead_letters", ("dead_letters",)),
)


def section_rows(figures: dict[str, Any], section: Section) -> list[dict[str, Any]]:
    """The rows of one section, as dicts of its dims and measures."""
    if section.key == "summary":
        out = []
        for name, path in SUMMARY:
            value: Any = figures
            for step in path:
                value = value[step]
            out.append({"indicator": name, "count": value})
        return out
    rows: list[dict[str, Any]] = list(figures[section.key])
    if section.key == "turnaround_hours":
        rows.append(
            {"indicator": ONWARD_INDICATOR, **figures["onward_consents"]["turnaround_hours"]}
        )
    return rows


def cell(value: Any) -> str:
    """A figure as the page and the CSV show it (None, a median from too few cases: empty)."""
    return "" if value is None else str(value)


def _tables(figures: dict[str, Any]) -> list[dict[str, Any]]:
    tables = []
    for s in SECTIONS:
        rows = section_rows(figures, s)
        bars = None
        if s.chart and rows:
            bars = [(" → ".join(str(r[d]) for d in s.dims), _bar(r[s.chart])) for r in rows]
        tables.append(
            {
                "key": s.key,
                "dims": s.dims,
                "measures": s.measures,
                "rows": [[cell(r[c]) for c in (*s.dims, *s.measures)] for r in rows],
                "bars": bars,
            }
        )
    return tables


def _bar(value: Any) -> int | float | str:
    return "–" if value is None else value  # noqa: RUF001 - an en dash: no figure


def _raw(**given: str | None) -> dict[str, str]:
    return {k: v for k, v in given.items() if v}


async def _states(session: SessionDep) -> list[str]:
    return sorted({p.jurisdiction for p in await list_participants(session)})


@router.get("/oversight/statistics")
async def statistics_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Overseeing,
    clock: ClockDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    state: Param = None,
    type: Param = None,
    urgency: Param = None,
) -> Response:
    raw = _raw(date_from=date_from, date_to=date_to, state=state, type=type, urgency=urgency)
    context: dict[str, Any] = {
        "raw": raw,
        "states": await _states(session),
        "workflows": list(WORKFLOWS),
        "urgencies": URGENCIES,
        "errors": [],
        "tables": [],
        "chart": bar_chart,
        "suppress_below": settings.statistics_suppress_below,
    }
    try:
        where = parse_filter(
            date_from=date_from, date_to=date_to, state=state, type=type, urgency=urgency
        )
    except BadStatisticsFilter as exc:
        await session.commit()
        context["errors"] = exc.errors
        return render(request, "statistics.html", context, user=user, status=422)
    figures = await statistics(
        session, now=clock(), where=where, suppress_below=settings.statistics_suppress_below
    )
    await session.commit()
    query = urlencode(where.query())
    context.update(
        figures=figures,
        tables=_tables(figures),
        filtered=where.active(),
        csv_link="/oversight/statistics.csv" + (f"?{query}" if query else ""),
    )
    return render(request, "statistics.html", context, user=user)


@router.get("/oversight/statistics.csv")
async def statistics_csv(
    session: SessionDep,
    settings: SettingsDep,
    _user: Overseeing,
    clock: ClockDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    state: Param = None,
    type: Param = None,
    urgency: Param = None,
) -> Response:
    """The page's figures, one per line: section, the row's dimensions, measure, value.
    Raises BadStatisticsFilter (a 422 page) on a bad filter."""
    where = parse_filter(
        date_from=date_from, date_to=date_to, state=state, type=type, urgency=urgency
    )
    figures = await statistics(
        session, now=clock(), where=where, suppress_below=settings.statistics_suppress_below
    )
    await session.commit()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "dimension", "measure", "value"])
    for s in SECTIONS:
        for r in section_rows(figures, s):
            label = _safe(" / ".join(str(r[d]) for d in s.dims))
            for m in s.measures:
                writer.writerow([s.key, label, m, cell(r[m])])
    return _csv(out.getvalue(), "statistics")


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- consultations ----------------------------------------------------------------------------


async def _consultation_filter(
    session: SessionDep, participant: str | None, date_from: str | None, date_to: str | None
) -> tuple[StatisticsFilter, list[str]]:
    """The period (checked as the statistics' is) and the list of participants; raises
    BadStatisticsFilter for a bad date or an unknown participant."""
    participants = [p.id for p in await list_participants(session)]
    errors: list[dict[str, str]] = []
    where = StatisticsFilter()
    try:
        where = parse_filter(date_from=date_from, date_to=date_to)
    except BadStatisticsFilter as exc:
        errors = exc.errors
    if participant and participant not in participants:
        errors.append(
            {"field": "participant", "message": "not a participant", "code": "participant"}
        )
    if errors:
        raise BadStatisticsFilter(errors)
    return where, participants


def _bounds(where: StatisticsFilter) -> tuple[dt.datetime | None, dt.datetime | None]:
    since = dt.datetime.combine(where.date_from, dt.time(), dt.UTC) if where.date_from else None
    until = (
        dt.datetime.combine(where.date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
        if where.date_to
        else None
    )
    return since, until


async def _logins(session: SessionDep, rows: list[Consultation]) -> dict[str, str]:
    ids = {r.account for r in rows if r.account}
    if not ids:
        return {}
    found = await session.execute(select(Account.id, Account.login).where(Account.id.in_(ids)))
    return dict(found.all())


@router.get("/oversight/consultations")
async def consultations_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Overseeing,
    participant: Param = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    raw = _raw(participant=participant, date_from=date_from, date_to=date_to)
    context: dict[str, Any] = {"raw": raw, "errors": [], "items": [], "participants": []}
    try:
        where, context["participants"] = await _consultation_filter(
            session, participant, date_from, date_to
        )
    except BadStatisticsFilter as exc:
        context["participants"] = [p.id for p in await list_participants(session)]
        await session.commit()
        context["errors"] = exc.errors
        return render(request, "consultations.html", context, user=user, status=422)
    since, until = _bounds(where)
    size = settings.inbox_page_size
    rows = await list_consultations(
        session,
        participant=participant or None,
        since=since,
        until=until,
        before=before,
        limit=size + 1,
    )
    more = len(rows) > size
    rows = rows[:size]
    logins = await _logins(session, rows)
    await session.commit()
    keep = {"participant": participant or "", **where.query()}
    keep = {k: v for k, v in keep.items() if v}
    query = urlencode(keep)
    context.update(
        items=[{"row": r, "login": logins.get(r.account or "", "")} for r in rows],
        filtered=bool(keep),
        first_link="/oversight/consultations" + (f"?{query}" if query else ""),
        next_link=(
            "/oversight/consultations?" + urlencode({**keep, "before": rows[-1].id})
            if more and rows
            else None
        ),
        first=before is None,
        csv_link="/oversight/consultations.csv" + (f"?{query}" if query else ""),
    )
    return render(request, "consultations.html", context, user=user)


@router.get("/oversight/consultations.csv")
async def consultations_csv(
    session: SessionDep,
    _user: Overseeing,
    participant: Param = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> Response:
    """Every consultation the filter selects, newest first, read in keyset chunks. Raises
    BadStatisticsFilter (a 422 page) on a bad filter."""
    where, _ = await _consultation_filter(session, participant, date_from, date_to)
    since, until = _bounds(where)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "time",
            "participant",
            "account",
            "login",
            "object",
            "role",
            "case_id",
            "message_id",
            "justification",
        ]
    )
    before: int | None = None
    while True:
        rows = await list_consultations(
            session,
            participant=participant or None,
            since=since,
            until=until,
            before=before,
            limit=EXPORT_CHUNK,
        )
        logins = await _logins(session, rows)
        for r in rows:
            writer.writerow(
                [
                    r.at.isoformat(),
                    r.participant or "",
                    r.account or "",
                    logins.get(r.account or "", ""),
                    r.object,
                    r.role or "",
                    r.case_id or "",
                    r.message_id or "",
                    _safe(r.justification) if r.justification is not None else ERASED_TEXT,
                ]
            )
        if len(rows) < EXPORT_CHUNK:
            break
        before = rows[-1].id
    await session.commit()
    return _csv(out.getvalue(), "consultations")


ERASED_TEXT = "(erased with the item read)"


def _safe(text: str) -> str:
    # A justification is free text, and a statistics dimension may be a code another
    # participant chose (a message type): one starting with =, +, - or @ would be a formula in
    # a spreadsheet (CSV injection), so it is prefixed with an apostrophe.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
