"""GET /v1/oversight/statistics: the indicators a national strategy reports on, computed from
case metadata only (issue 5, item 7)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.integration.test_case_clocks import CLOCKS
from tests.integration.test_case_helpers import (
    DECIDER,
    DRAFTER,
    HANDLER,
    FakeClock,
    fire,
    set_clocks,
    to_transmitted,
    upload,
    use_clock,
)


def indicator(stats: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in stats["turnaround_hours"] if t["indicator"] == name)
    return found


def test_statistics_report_turnaround_refusals_and_overdue(api: Api) -> None:
    api.settings.statistics_suppress_below = 0  # single cases: exact counts, no suppression
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    executed = to_transmitted(api)
    clock.advance(hours=24)
    fire(api, executed["id"], "acknowledge", HANDLER)
    fire(api, executed["id"], "start_assessment", HANDLER)
    clock.advance(hours=24)
    fire(api, executed["id"], "accept", HANDLER)
    fire(api, executed["id"], "assign_execution", HANDLER, {"executing_authority": "SDNY"})
    clock.advance(hours=48)
    file_id = upload(api, executed["id"], HANDLER, b"records")
    fire(api, executed["id"], "complete", HANDLER, {"evidence": [file_id]})

    refused = to_transmitted(api)
    clock.advance(hours=12)
    fire(api, refused["id"], "acknowledge", HANDLER)
    fire(api, refused["id"], "start_assessment", HANDLER)
    fire(
        api,
        refused["id"],
        "open_consultation",
        HANDLER,
        {"reason": "intended_refusal", "message": "We consider refusing."},
    )
    clock.advance(hours=12)
    fire(
        api,
        refused["id"],
        "refuse",
        DECIDER,
        {"grounds": ["essential_interests"], "reasons": "Security of the State."},
    )

    late = to_transmitted(api)
    clock.advance(days=8)  # the treaty clock asks for acknowledgement within 7 days

    assert api.get("/v1/oversight/statistics", as_=DRAFTER).status_code == 403
    r = api.get("/v1/oversight/statistics", as_="oversight")
    assert r.status_code == 200, r.text
    stats = r.json()
    receipt = indicator(stats, "mla.transmission_to_receipt")
    assert (receipt["count"], receipt["median"], receipt["p90"]) == (2, 12.0, 24.0)
    decision = indicator(stats, "mla.receipt_to_decision")
    assert (decision["count"], decision["median"], decision["p90"]) == (2, 12.0, 24.0)
    execution = indicator(stats, "mla.decision_to_execution")
    assert (execution["count"], execution["median"]) == (1, 48.0)
    assert indicator(stats, "fiu.submission_to_first_response")["median"] is None
    assert stats["refusals_by_ground"] == [
        {"workflow": "mla.request", "ground": "essential_interests", "count": 1}
    ]
    states = {(s["workflow"], s["state"]): s["count"] for s in stats["cases_by_state"]}
    assert states == {
        ("mla.request", "EXECUTED"): 1,
        ("mla.request", "REFUSED"): 1,
        ("mla.request", "TRANSMITTED"): 1,
    }
    assert stats["cases_by_parties"] == [
        {
            "workflow": "mla.request",
            "requesting": "it.central-authority",
            "requested": "us.central-authority",
            "count": 3,
        }
    ]
    assert stats["overdue_cases"] == 1
    assert late["id"] not in r.text  # aggregates only: no case ids, no content
    assert "Security of the State" not in r.text
