"""broker.statistics: the filter's parsing (every wrong field named) and the small-count
suppression shared by the page, its CSV and the API."""

from __future__ import annotations

import datetime as dt

import pytest

from broker.statistics.service import (
    BadStatisticsFilter,
    StatisticsFilter,
    Suppressor,
    parse_filter,
)


def test_an_empty_filter_selects_everything() -> None:
    where = parse_filter(date_from="", date_to=None, state="", type="", urgency="")
    assert where == StatisticsFilter()
    assert not where.active()
    assert where.query() == {}


def test_a_full_filter_and_its_query() -> None:
    where = parse_filter(
        date_from="2026-01-01",
        date_to="2026-03-31",
        state="it",
        type="mla.request",
        urgency="urgent",
    )
    assert where == StatisticsFilter(
        dt.date(2026, 1, 1), dt.date(2026, 3, 31), "IT", "mla.request", "urgent"
    )
    assert where.query() == {
        "from": "2026-01-01",
        "to": "2026-03-31",
        "state": "IT",
        "type": "mla.request",
        "urgency": "urgent",
    }


def test_every_wrong_field_is_named() -> None:
    with pytest.raises(BadStatisticsFilter) as caught:
        parse_filter(
            date_from="2026-02-30",
            date_to="soon",
            state="ITA",
            type="extradition",
            urgency="very",
        )
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [
        ("from", "date"),
        ("to", "date"),
        ("state", "state"),
        ("type", "type"),
        ("urgency", "urgency"),
    ]
    problem = caught.value.problem("/v1/oversight/statistics")
    assert problem["status"] == 422
    assert problem["type"].endswith("bad-statistics-filter")
    assert len(problem["errors"]) == 5


def test_a_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(BadStatisticsFilter) as caught:
        parse_filter(date_from="2026-03-02", date_to="2026-03-01")
    assert caught.value.errors[0]["field"] == "to"
    assert parse_filter(date_from="2026-03-02", date_to="2026-03-02").date_to == dt.date(2026, 3, 2)


def test_small_counts_are_suppressed_zero_is_not() -> None:
    show = Suppressor(5)
    assert [show(n) for n in (0, 1, 4, 5, 12)] == [0, "<5", "<5", 5, 12]
    assert show.suppressed == 2
    assert show.turnaround([1.0, 2.0]) == {"count": "<5", "median": None, "p90": None}
    assert show.turnaround([1.0, 2.0, 3.0, 4.0, 10.0]) == {"count": 5, "median": 3.0, "p90": 10.0}


def test_a_threshold_of_zero_or_one_turns_suppression_off() -> None:
    for below in (0, 1):
        show = Suppressor(below)
        assert show(1) == 1
        assert show.turnaround([2.0]) == {"count": 1, "median": 2.0, "p90": 2.0}
