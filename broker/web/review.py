"""What a page shows of a retention's review (P17, docs/retention.md): when it opens, whether
it is open, how far it may extend. Shown to supervisors only, who alone may extend."""

from __future__ import annotations

import datetime as dt
from typing import Any

from broker import messages
from broker.web.service import WebUser


def review_of(
    deadline: dt.datetime | None, terms: messages.ReviewTerms, now: dt.datetime, user: WebUser
) -> dict[str, Any] | None:
    """What the page shows of a retention's review to ``user``: nothing without a deadline or
    to someone who is not a supervisor; else when it opens, whether it is open, and the
    latest deadline a review may set."""
    if deadline is None or not user.caller.has_any("supervisor"):
        return None
    opens = messages.review_opens(deadline, terms)
    return {
        "deadline": deadline,
        "opens": opens,
        "open": now >= opens,
        "latest": now + terms.max_extension,
        "days": terms.review.days,
        "min_reason": terms.min_reason,
    }
