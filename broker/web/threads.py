"""The threads under a case as its page shows them: the child cases the reader sees (feedback,
consent), each with the events the reader may fire in it, and the threads the reader may open
under it.

What may be opened is read from the tables, as the service reads it: the thread's workflow
opens under the case's, the case is shared and not erased, the reader's role may fire the
opening event and the event's guards on the parent are met. The service checks all of it
again when the thread is opened (``broker.cases.service.open_case``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases import service as cases
from broker.cases.bodies import NoBody
from broker.cases.guards import Facts
from broker.cases.models import Case
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import START, Side, Transition, Workflow
from broker.core.context import Caller
from broker.core.db import utcnow
from broker.core.errors import NotFound

# The threads a case page offers to open. Feedback is asked by the side that provided
# information under the case: the side of a parent event that widens the terms (an FIU's
# response, the disclosure itself), once it fired one. Consent is asked from a message's
# forward refusal (``forward_views``), where the recipient and purpose are known.
OFFERED = ("feedback",)


def _provided(loaded: cases.Loaded, side: Side) -> bool:
    wf = loaded.workflow
    for ev in loaded.events:
        t = wf.transition(ev.from_state, ev.event)
        if t is not None and t.widens_terms and t.side is side:
            return True
    return False


def _parent_facts(parent: Case, t: Transition) -> Facts:
    return Facts(
        workflow="",
        case_type=parent.case_type,
        state=START,
        event=t.event,
        side=Side.REQUESTING,
        body=NoBody(),
        account_id=None,
        roles=frozenset(),
        now=utcnow(),
        parent_workflow=parent.workflow,
        parent_state=parent.state,
    )


def openers(loaded: cases.Loaded, caller: Caller) -> list[tuple[Workflow, Transition]]:
    """The (thread workflow, opening event) pairs the caller may open under this case."""
    case = loaded.case
    side = cases.side_of(case, caller.participant_id)
    if (
        side is None
        or case.shared_at is None
        or case.state in loaded.workflow.erased_states
        or not _provided(loaded, side)
    ):
        return []
    found = []
    for name in OFFERED:
        wf = WORKFLOWS[name]
        if case.workflow not in wf.parents:
            continue
        for t in wf.opening_events:
            if caller.roles.isdisjoint(t.roles):
                continue
            facts = _parent_facts(case, t)
            if all(g.failure(facts) is None for g in t.guards if g.on_parent):
                found.append((wf, t))
    return found


def opener(loaded: cases.Loaded, caller: Caller, workflow: str) -> tuple[Workflow, Transition]:
    """The opening event of ``workflow`` the caller may fire under this case.

    Raises NotFound when the case page offers no such thread to the caller."""
    for wf, t in openers(loaded, caller):
        if wf.name == workflow:
            return wf, t
    raise NotFound(f"no {workflow} thread can be opened by you under case {loaded.case.id}")


async def case_threads(session: AsyncSession, caller: Caller, case: Case) -> list[dict[str, Any]]:
    """The case's threads the caller sees, oldest first, each with the events the caller may
    fire in it now."""
    rows = []
    for child in await cases.children_of(session, case, caller):
        loaded = await cases.load(session, child)
        rows.append(
            {
                "case": child,
                "workflow": loaded.workflow,
                "opened_by_us": cases.side_of(child, caller.participant_id) is Side.REQUESTING,
                "next_events": cases.allowed_events(loaded, caller),
            }
        )
    return rows
