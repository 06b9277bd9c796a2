"""The home page: what waits for the signed-in person, urgent first.

Five sections, each one bounded query on indexed columns (``HOME_ITEMS`` rows, no query per
row): messages delivered and not yet acknowledged; cases whose next event is the person's to
fire (``broker.cases.service.awaiting``, read from the transition tables through the same
rule as the case page's buttons); for a supervisor, requests in vetting awaiting the four-eyes
approval (art. 18(13): the central authority transmits); the running deadlines of the
participant's cases, overdue ones first (art. 18(24)); and the reminders and escalations the
node's clocks raised on them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from broker.cases import read_models
from broker.cases import service as cases
from broker.cases.workflow import Side
from broker.core.db import utcnow
from broker.http import SessionDep, SettingsDep
from broker.messages import ReviewTerms, list_sent
from broker.web import service
from broker.web.case_views import STOPPING, ClockDep, openable_for, time_left, tone
from broker.web.rendering import render
from broker.web.retention_views import reviews_due
from broker.web.views import HANDLING_ROLES, SignedIn, router

HOME_ITEMS = 10


def _count(items: list[Any], more: bool) -> str:
    return f"{len(items)}+" if more else str(len(items))


@router.get("/")
async def home(
    request: Request, session: SessionDep, settings: SettingsDep, user: SignedIn, clock: ClockDep
) -> Response:
    handles = user.caller.has_any(*HANDLING_ROLES)
    context: dict[str, Any] = {"handles": handles}
    if not handles:
        await session.commit()
        return render(request, "home.html", context, user=user)
    now = clock()
    caller = user.caller
    waiting = await service.awaiting_receipt(session, caller=caller, limit=HOME_ITEMS + 1)
    approvals: list[dict[str, Any]] = []
    more_approvals = False
    if caller.has_any("supervisor"):
        vetting = await cases.list_cases(
            session, caller=caller, now=now, state="CA_VETTING", limit=HOME_ITEMS + 1
        )
        vetting = [c for c in vetting if cases.side_of(c, caller.participant_id) is Side.REQUESTING]
        more_approvals = len(vetting) > HOME_ITEMS
        vetting = vetting[:HOME_ITEMS]
        mine = await cases.drafted_by(session, vetting, caller.account_id)
        approvals = [{**_case_row(c, user, now), "drafted_by_me": c.id in mine} for c in vetting]
    shown = frozenset(a["case"].id for a in approvals)
    moves = await cases.awaiting(
        session, caller=caller, limit=HOME_ITEMS + 1, ignoring=STOPPING, excluding=shown
    )
    due = await cases.due_first(session, caller=caller, limit=HOME_ITEMS + 1)
    notices = await cases.recent_notices(session, caller=caller, limit=HOME_ITEMS + 1)
    # What went to another participant: a case's events before it is shared (submitted for
    # vetting, returned) are addressed to the participant itself, and are not "sent".
    sent = await list_sent(session, caller=caller, limit=HOME_ITEMS, before=None, to_others=True)
    new_requests = await openable_for(session, user)
    reviews = []
    if caller.has_any("supervisor"):
        terms = ReviewTerms.from_settings(settings)
        reviews = await reviews_due(session, caller=caller, terms=terms, now=utcnow())
    await session.commit()
    context.update(
        waiting=waiting[:HOME_ITEMS],
        waiting_count=_count(waiting[:HOME_ITEMS], len(waiting) > HOME_ITEMS),
        supervisor=caller.has_any("supervisor"),
        approvals=approvals,
        approvals_count=_count(approvals, more_approvals),
        moves=[
            {**_case_row(a.case, user, now), "events": [t.event for t in a.events]}
            for a in moves[:HOME_ITEMS]
        ],
        moves_count=_count(moves[:HOME_ITEMS], len(moves) > HOME_ITEMS),
        due=[_case_row(c, user, now) for c in due[:HOME_ITEMS]],
        due_count=_count(due[:HOME_ITEMS], len(due) > HOME_ITEMS),
        overdue_count=sum(1 for c in due[:HOME_ITEMS] if c.next_due_at and c.next_due_at < now),
        notices=[
            {
                "case": c.id,
                "urgent": c.urgent,
                "event": ev.event,
                "at": ev.at,
                "details": ev.details,
                "until": _until(ev.details),
            }
            for c, ev in notices[:HOME_ITEMS]
        ],
        notices_count=_count(notices[:HOME_ITEMS], len(notices) > HOME_ITEMS),
        sent=sent,
        reviews=reviews,
        new_requests=new_requests,
    )
    return render(request, "home.html", context, user=user)


def _until(details: dict[str, Any]) -> dt.datetime | None:
    """The retention deadline a retention review notice names."""
    value = details.get("retention_until")
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def _case_row(case: Any, user: Any, now: Any) -> dict[str, Any]:
    s = read_models.summary(case, user.caller, now)
    return {"case": s, "tone": tone(s.state), "left": time_left(s.next_due_at, now)}
