"""GET /v1/oversight/statistics: the indicators, for oversight only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from broker.cases.views import ClockDep
from broker.http import Oversight, SessionDep, SettingsDep
from broker.statistics.schemas import StatisticsRead
from broker.statistics.service import parse_filter, statistics

router = APIRouter(prefix="/v1", tags=["oversight"])

Param = Annotated[str | None, Query(max_length=64)]


@router.get("/oversight/statistics", response_model=StatisticsRead)
async def oversight_statistics(
    session: SessionDep,
    settings: SettingsDep,
    _caller: Oversight,
    clock: ClockDep,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    state: Param = None,
    type: Param = None,
    urgency: Param = None,
) -> StatisticsRead:
    """Cases and messages by type, State pair and month; requests sent and received per
    State; median and 90th-percentile turnaround per indicator and State pair; the share
    answered within the requested deadline; refusals by ground and by policy rule;
    postponements; overdue cases; consents; dead letters. Metadata only; counts below the
    node's threshold are suppressed. A bad filter is a 422 naming each field."""
    where = parse_filter(
        date_from=date_from, date_to=date_to, state=state, type=type, urgency=urgency
    )
    figures = await statistics(
        session, now=clock(), where=where, suppress_below=settings.statistics_suppress_below
    )
    await session.commit()
    return StatisticsRead.model_validate(figures)
