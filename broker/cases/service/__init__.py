"""Cases: open one, fire its events, read and list them.

Invariants:
- A case's state changes only through an accepted event: a signed envelope of the acting
  participant (the node signs with the custodial key of a person's participant), decided by
  the policy engine with the case's context (``broker.cases.policy``), stored and routed by
  ``messages.accept``, appended to ``case_events``, and folded into the ``cases`` row, all in
  the caller's one transaction. Timers of the node add notices and the retention expiry,
  signed by the node (``broker.cases.scheduler``).
- One audit leaf per event: the acceptance leaf of the envelope is the event's leaf (kind
  ``case:transition`` or ``consent:*``), naming the case, the event, both states, the
  sequence number and the policy decision. A refused event stores nothing but the
  ``message:refused`` leaf, which names the case and the event too.
- The event is routed to the other side once the case is shared (``transmit``, ``submit``,
  a thread's opening event); before, drafting and vetting stay inside the requesting
  participant (the envelope goes to the participant itself). Both sides see the same history
  from the moment the case is shared.
- A caller sees a case only as one of its two participants (the requested one only once it
  is shared); a confidential case (18(20)) only as a person with a case-handling role.
- Services flush, never commit.

Modules, one responsibility each: ``loading`` (a case with its history, and who may see it),
``request`` (the request, kept encrypted), ``opening`` (drafts and threads), ``firing``
(planning, checking, signing and accepting an event), ``events`` (the envelope an event is
drafted in and what it changes on the case row), ``notices`` (the node's own events, the
deadlines and timers), ``reading`` (threads, lists, allowed next events).
Other packages import this package's public names from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.cases.config import CaseContext
from broker.cases.service.firing import Fired, fire_event, prepare_event
from broker.cases.service.loading import Loaded, can_see, case_for, drafted_by, load, side_of
from broker.cases.service.notices import (
    case_deadlines,
    follow_case_retention,
    progress,
    record_notice,
    record_system_event,
    reschedule,
)
from broker.cases.service.opening import open_case, open_draft_for
from broker.cases.service.reading import (
    Awaiting,
    allowed_events,
    awaiting,
    children_of,
    due_first,
    list_cases,
    recent_notices,
)
from broker.cases.service.request import erased_error, request_json
from broker.cases.service.retention import extend_case_retention

__all__: Sequence[str] = [
    "Awaiting",
    "CaseContext",
    "Fired",
    "Loaded",
    "allowed_events",
    "awaiting",
    "can_see",
    "case_deadlines",
    "case_for",
    "children_of",
    "drafted_by",
    "due_first",
    "erased_error",
    "extend_case_retention",
    "fire_event",
    "follow_case_retention",
    "list_cases",
    "load",
    "open_case",
    "open_draft_for",
    "prepare_event",
    "progress",
    "recent_notices",
    "record_notice",
    "record_system_event",
    "request_json",
    "reschedule",
    "side_of",
]
