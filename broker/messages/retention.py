"""The retention deadline of a message (P17; LED art. 4(1)(e), 5; docs/retention.md).

A message outside a case is kept for the period of the policy decision's ``retention``
obligation (an ISO 8601 duration such as ``P5Y``; the longest if several rules give one),
else for the node's default, counted from its acceptance. A message of a case has no
deadline of its own: it follows the case, and is erased with it.

Invariants: a deadline is never earlier than the acceptance; an obligation whose value is
not a duration this module reads falls back to the default, never to "keep for ever".
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<y>\d{1,4})Y)?(?:(?P<m>\d{1,5})M)?(?:(?P<w>\d{1,5})W)?(?:(?P<d>\d{1,6})D)?$"
)


def parse_duration(value: str) -> tuple[int, int, int] | None:
    """``(years, months, days)`` of an ISO 8601 date duration (``P5Y``, ``P18M``, ``P2W``,
    ``P1Y6M``), or None if ``value`` is not one."""
    match = _DURATION.match(value.strip().upper())
    if match is None:
        return None
    y, m, w, d = (int(match.group(g) or 0) for g in ("y", "m", "w", "d"))
    return y, m, w * 7 + d


def add_duration(start: dt.datetime, duration: tuple[int, int, int]) -> dt.datetime:
    """``start`` plus a calendar duration: years and months on the calendar (29 February
    plus one year is 28 February), then days."""
    years, months, days = duration
    total = start.month - 1 + months + 12 * years
    year, month = start.year + total // 12, total % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day) + dt.timedelta(days=days)


def retention_deadline(
    accepted_at: dt.datetime,
    *,
    obligations: Iterable[tuple[str, str]],
    default_days: int,
) -> dt.datetime:
    """The deadline of a message accepted at ``accepted_at``, from the ``(kind, value)``
    obligations of its policy decision: the latest ``retention`` one, else ``default_days``."""
    deadlines = [
        add_duration(accepted_at, parsed)
        for kind, value in obligations
        if kind == "retention" and (parsed := parse_duration(value)) is not None
    ]
    if deadlines:
        return max(*deadlines, accepted_at)
    return accepted_at + dt.timedelta(days=default_days)
