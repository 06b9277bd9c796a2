"""Oversight's statistics and consultations pages (issue 15, items 3 and 4): the role, the
filters, small-count suppression, the CSV downloads, the page's tables agreeing with
GET /v1/oversight/statistics, and bad filters answered with a 4xx, never a 500."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from typing import Any

import pytest

from broker.web.oversight_views import SECTIONS, cell, section_rows
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
    use_clock,
)
from tests.integration.web_helpers import Browser

DEADLINE = "2026-03-20T00:00:00Z"
REASON = "The trial opens on 23 March 2026."


def _seed(api: Api) -> dict[str, list[str]]:
    """Six IT -> US requests on 2 March 2026: five acknowledged after 12 hours, one of them
    urgent; one refused on a ground; all with a requested deadline."""
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    acknowledged = []
    for i in range(5):
        case = to_transmitted(api, deadline=DEADLINE, deadline_reason=REASON, urgent=i == 0)
        acknowledged.append(case["id"])
    clock.advance(hours=12)
    for case_id in acknowledged:
        fire(api, case_id, "acknowledge", HANDLER)
    refused = to_transmitted(api, deadline=DEADLINE, deadline_reason=REASON)
    fire(api, refused["id"], "acknowledge", HANDLER)
    fire(api, refused["id"], "start_assessment", HANDLER)
    fire(
        api,
        refused["id"],
        "open_consultation",
        HANDLER,
        {"reason": "intended_refusal", "message": "We consider refusing."},
    )
    fire(
        api,
        refused["id"],
        "refuse",
        DECIDER,
        {"grounds": ["essential_interests"], "reasons": "Security of the State."},
    )
    return {"acknowledged": acknowledged, "refused": [refused["id"]]}


def _browser(api: Api, login: str = "oversight") -> Browser:
    api.client.cookies.clear()
    browser = Browser(api.client)
    assert browser.sign_in(login).status_code == 303
    return browser


def _tables(page: str) -> dict[str, list[list[str]]]:
    """The page's figure tables: section key -> rows of cell texts."""
    out = {}
    for key, body in re.findall(
        r'<table class="table" id="table-([a-z_]+)">.*?<tbody>(.*?)</tbody>', page, re.S
    ):
        rows = []
        for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
            rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
        out[key] = rows
    return out


def _api_tables(stats: dict[str, Any], summary_labels: dict[str, str]) -> dict[str, Any]:
    out = {}
    for s in SECTIONS:
        rows = [[cell(r[c]) for c in (*s.dims, *s.measures)] for r in section_rows(stats, s)]
        if s.key == "summary":
            rows = [[summary_labels[r[0]], r[1]] for r in rows]
        if rows:
            out[s.key] = rows
    return out


SUMMARY_LABELS = {
    "overdue_cases": "Overdue cases",
    "postponements": "Postponements",
    "currently_postponed": "Currently postponed",
    "consent_cases_requested": "Consent cases asked",
    "consent_cases_granted": "Consent cases granted",
    "consent_cases_refused": "Consent cases refused",
    "onward_consents_requested": "Onward-use consents asked",
    "onward_consents_granted": "Onward-use consents granted",
    "onward_consents_refused": "Onward-use consents refused",
    "onward_consents_pending": "Onward-use consents awaiting an answer",
    "dead_letters": "Dead letters",
}


def test_page_tables_agree_with_the_api_and_small_counts_are_suppressed(api: Api) -> None:
    seeded = _seed(api)
    stats = api.get("/v1/oversight/statistics", as_="oversight").json()
    assert stats["suppress_below"] == 5
    assert stats["cases_by_type"] == [{"workflow": "mla.request", "count": 6}]
    assert stats["cases_by_state_pair"] == [
        {"requesting_state": "IT", "requested_state": "US", "count": 6}
    ]
    assert stats["requests_by_state"] == [
        {"state": "IT", "sent": 6, "received": 0},
        {"state": "US", "sent": 0, "received": 6},
    ]
    assert stats["cases_by_month"] == [{"month": "2026-03", "count": 6}]
    assert stats["cases_by_assistance_type"] == [{"assistance_type": "records", "count": 6}]
    receipt = next(
        t for t in stats["turnaround_hours"] if t["indicator"] == "mla.transmission_to_receipt"
    )
    assert receipt == {
        "indicator": "mla.transmission_to_receipt",
        "count": 6,
        "median": 12.0,
        "p90": 12.0,
    }
    # One refusal, one refused case: below the threshold, shown as "<5", no median.
    assert stats["refusals_by_ground"] == [
        {"workflow": "mla.request", "ground": "essential_interests", "count": "<5"}
    ]
    decision = next(
        t for t in stats["turnaround_hours"] if t["indicator"] == "mla.receipt_to_decision"
    )
    assert decision == {
        "indicator": "mla.receipt_to_decision",
        "count": "<5",
        "median": None,
        "p90": None,
    }
    assert stats["timeliness"] == [
        {
            "workflow": "mla.request",
            "with_deadline": 6,
            "answered": "<5",
            "answered_in_time": "<5",
            "share_in_time": None,
        }
    ]
    assert stats["suppressed_cells"] > 0

    browser = _browser(api)
    page = browser.get("/oversight/statistics")
    assert page.status_code == 200, page.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"' in page.text
    assert "style=" not in page.text
    assert "<script>" not in page.text
    tables = _tables(page.text)
    assert tables == _api_tables(stats, SUMMARY_LABELS)
    assert tables["refusals_by_ground"][0][1:] != ["essential_interests"]
    assert tables["refusals_by_ground"] == [["mla.request", "essential_interests", "<5"]]
    # Aggregates only: no case id, no reason.
    for case_id in seeded["acknowledged"] + seeded["refused"]:
        assert case_id not in page.text
    assert "Security of the State" not in page.text

    # With the threshold off, the small counts show.
    api.settings.statistics_suppress_below = 0
    exact = api.get("/v1/oversight/statistics", as_="oversight").json()
    assert exact["refusals_by_ground"][0]["count"] == 1
    assert exact["suppressed_cells"] == 0


def test_filters_select_period_state_type_and_urgency(api: Api) -> None:
    _seed(api)

    def cases(**params: str) -> Any:
        r = api.get("/v1/oversight/statistics", as_="oversight", params=params)
        assert r.status_code == 200, r.text
        return r.json()["cases_by_type"]

    assert cases(state="it") == [{"workflow": "mla.request", "count": 6}]
    assert cases(state="nl") == []
    assert cases(type="fiu.request") == []
    assert cases(**{"from": "2026-03-02", "to": "2026-03-02"}) == [
        {"workflow": "mla.request", "count": 6}
    ]
    assert cases(**{"from": "2026-03-03"}) == []
    assert cases(urgency="normal") == [{"workflow": "mla.request", "count": 5}]
    assert cases(urgency="urgent") == [{"workflow": "mla.request", "count": "<5"}]

    browser = _browser(api)
    page = browser.get("/oversight/statistics?state=NL&type=mla.request&urgency=urgent")
    assert page.status_code == 200
    assert '<option value="NL" selected>' in page.text
    assert '<option value="urgent" selected>' in page.text
    link = "/oversight/statistics.csv?state=NL&amp;type=mla.request&amp;urgency=urgent"
    assert link in page.text
    assert "table-cases_by_type" not in page.text  # nothing for NL


def test_csv_holds_the_same_figures(api: Api) -> None:
    _seed(api)
    stats = api.get("/v1/oversight/statistics", as_="oversight", params={"state": "us"}).json()
    browser = _browser(api)
    r = browser.get("/oversight/statistics.csv?state=us")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="statistics.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["section", "dimension", "measure", "value"]
    assert ["cases_by_type", "mla.request", "count", "6"] in rows
    assert ["cases_by_state_pair", "IT / US", "count", "6"] in rows
    assert ["refusals_by_ground", "mla.request / essential_interests", "count", "<5"] in rows
    assert ["turnaround_hours", "mla.receipt_to_decision", "median", ""] in rows
    expected = [
        [s.key, " / ".join(str(r[d]) for d in s.dims), m, cell(r[m])]
        for s in SECTIONS
        for r in section_rows(stats, s)
        for m in s.measures
    ]
    assert rows[1:] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-13-01", "from"),
        ("from=2026-03-05&to=2026-03-01", "to"),
        ("state=Italy", "state"),
        ("type=extradition", "type"),
        ("urgency=soon", "urgency"),
    ],
)
def test_bad_filters_are_4xx_on_the_page_the_csv_and_the_api(
    api: Api, query: str, field: str
) -> None:
    r = api.get(f"/v1/oversight/statistics?{query}", as_="oversight")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith(":bad-statistics-filter")
    assert [e["field"] for e in problem["errors"]] == [field]

    browser = _browser(api)
    page = browser.get(f"/oversight/statistics?{query}")
    assert page.status_code == 422
    assert 'class="error-summary"' in page.text
    assert f'href="#{field}"' in page.text
    assert f'id="{field}"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert f'<p class="error-message" id="{field}-error">' in page.text
    assert f'aria-describedby="{field}-error"' in page.text
    download = browser.get(f"/oversight/statistics.csv?{query}")
    assert download.status_code == 422
    assert download.headers["content-type"].startswith("text/html")


def test_only_oversight_sees_the_pages(api: Api) -> None:
    for login in ("it.officer", "it.supervisor", "it.admin"):
        browser = _browser(api, login)
        for path in ("/oversight/statistics", "/oversight/consultations"):
            assert browser.get(path).status_code == 403, (login, path)
        assert "/oversight/statistics" not in browser.get("/").text
    home = _browser(api).get("/").text
    assert 'href="/oversight/statistics"' in home
    assert 'href="/oversight/consultations"' in home


def _consult(api: Api, case_id: str, who: str, why: str) -> None:
    r = api.get(f"/v1/cases/{case_id}/request", as_=who, params={"justification": why})
    assert r.status_code == 200, r.text


def test_consultations_report_who_read_what_when_and_why(api: Api) -> None:
    case = to_transmitted(api)
    _consult(api, case["id"], DRAFTER, "checking the request before the meeting")
    _consult(api, case["id"], HANDLER, "assessing the request under art. 18(21)")
    _consult(api, case["id"], HANDLER, "preparing the execution plan")

    browser = _browser(api)
    page = browser.get("/oversight/consultations")
    assert page.status_code == 200, page.text
    assert "style=" not in page.text
    text = page.text
    for why in (
        "checking the request before the meeting",
        "assessing the request under art. 18(21)",
        "preparing the execution plan",
    ):
        assert why in text
    assert "us.officer" in text
    assert "it.officer" in text
    assert case["id"] in text
    assert "Records of the company" not in text  # no content (the sample request's text)

    only_us = browser.get("/oversight/consultations?participant=us.central-authority")
    assert "assessing the request" in only_us.text
    assert "checking the request before the meeting" not in only_us.text
    later = browser.get("/oversight/consultations?from=2999-01-01")
    assert "No consultations in this period." in later.text

    # Paged with a keyset cursor that keeps the filter.
    api.settings.inbox_page_size = 1
    first = browser.get("/oversight/consultations?participant=us.central-authority")
    assert first.text.count("<tr>") == 2  # the header and one row
    assert "preparing the execution plan" in first.text
    link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert link
    assert "participant=us.central-authority" in link.group(1)
    second = browser.get(html.unescape(link.group(1)))
    assert "assessing the request" in second.text
    assert 'rel="next"' not in second.text

    download = browser.get("/oversight/consultations.csv?participant=us.central-authority")
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0][:5] == ["time", "participant", "account", "login", "object"]
    assert [(r[1], r[3], r[4], r[8]) for r in rows[1:]] == [
        ("us.central-authority", "us.officer", "case_request", "preparing the execution plan"),
        (
            "us.central-authority",
            "us.officer",
            "case_request",
            "assessing the request under art. 18(21)",
        ),
    ]
    assert all(dt.datetime.fromisoformat(r[0]).tzinfo for r in rows[1:])


def test_consultations_bad_filters_are_422(api: Api) -> None:
    browser = _browser(api)
    for query, field in (("participant=xx.nobody", "participant"), ("to=yesterday", "to")):
        page = browser.get(f"/oversight/consultations?{query}")
        assert page.status_code == 422
        assert f'href="#{field}"' in page.text
    assert browser.get("/oversight/consultations?before=-1").status_code == 422
    assert browser.get("/oversight/consultations.csv?from=1").status_code == 422


def test_a_justification_is_never_a_spreadsheet_formula_in_the_csv(api: Api) -> None:
    case = to_transmitted(api)
    _consult(api, case["id"], DRAFTER, '=HYPERLINK("http://x.invalid","read the request")')
    download = _browser(api).get("/oversight/consultations.csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[1][8] == '\'=HYPERLINK("http://x.invalid","read the request")'
