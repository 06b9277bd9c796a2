"""The case indicators' definitions: the turnaround spans (from the first ``start`` event to
the first ``end`` after it) and the refusal events, with the nearest-rank percentile.

``broker.statistics`` computes the indicators from them in SQL; ``spans`` is the same
definition over events in memory, for tests and tools. Everything is read from the ``cases``
rows and the event names, times and ground codes of ``case_events``: no request, no reasons,
no content.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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
# ``refuse_national`` is the refusal to extradite a national (UNTOC art. 16(10)).
REFUSALS = frozenset({"refuse", "refuse_national", "refuse_consent"})


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
