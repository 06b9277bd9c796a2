"""The statistics report's schema. A count is an integer, or the string ``"<N>"`` when it is
from 1 to N - 1 and N is the node's ``statistics_suppress_below`` (then a median or a
percentile drawn from it is null)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

Count = int | str


class StateCount(BaseModel):
    workflow: str
    state: str
    count: Count


class PairCount(BaseModel):
    workflow: str
    requesting: str
    requested: str
    count: Count


class TypeCount(BaseModel):
    workflow: str
    count: Count


class StatePairCount(BaseModel):
    requesting_state: str
    requested_state: str
    count: Count


class MonthCount(BaseModel):
    month: str = Field(examples=["2026-12"])
    count: Count


class AssistanceCount(BaseModel):
    assistance_type: str = Field(description="an MLA request asking for several counts in each")
    count: Count


class DirectionCount(BaseModel):
    state: str
    sent: Count
    received: Count


class Hours(BaseModel):
    count: Count
    median: float | None = Field(description="hours")
    p90: float | None = Field(description="hours, 90th percentile (nearest rank)")


class Turnaround(Hours):
    indicator: str


class PairTurnaround(Turnaround):
    requesting_state: str
    requested_state: str


class Timeliness(BaseModel):
    workflow: str
    with_deadline: Count
    answered: Count
    answered_in_time: Count
    share_in_time: float | None = Field(description="answered in time / answered")


class GroundCount(BaseModel):
    workflow: str
    ground: str
    count: Count


class RuleCount(BaseModel):
    rule: str
    count: Count


class MessageTypeCount(BaseModel):
    type: str
    count: Count


class MessagePairCount(BaseModel):
    sender_state: str
    recipient_state: str
    count: Count


class ConsentCounts(BaseModel):
    requested: Count
    granted: Count
    refused: Count


class OnwardConsents(ConsentCounts):
    pending: Count
    turnaround_hours: Hours


class StatisticsFilters(BaseModel):
    date_from: dt.date | None
    date_to: dt.date | None
    state: str | None
    type: str | None
    urgency: str | None


class StatisticsRead(BaseModel):
    """Monitoring indicators from metadata only: no content, no persons."""

    generated_at: dt.datetime
    suppress_below: int
    suppressed_cells: int
    filters: StatisticsFilters
    cases_by_state: list[StateCount]
    cases_by_parties: list[PairCount]
    cases_by_type: list[TypeCount]
    cases_by_state_pair: list[StatePairCount]
    cases_by_month: list[MonthCount]
    cases_by_assistance_type: list[AssistanceCount]
    requests_by_state: list[DirectionCount]
    turnaround_hours: list[Turnaround]
    turnaround_by_state_pair: list[PairTurnaround]
    timeliness: list[Timeliness]
    refusals_by_ground: list[GroundCount]
    refusals_by_rule: list[RuleCount]
    postponements: Count
    currently_postponed: Count
    overdue_cases: Count
    consents: ConsentCounts
    onward_consents: OnwardConsents
    messages_by_type: list[MessageTypeCount]
    messages_by_state_pair: list[MessagePairCount]
    messages_by_month: list[MonthCount]
    dead_letters: Count
    dead_letters_by_type: list[MessageTypeCount]
