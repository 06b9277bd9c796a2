"""Declared means declared (issue 14 item 4): a legal basis or purpose of Unicode spaces or
format characters alone is not declared (LED arts. 4(1)(b), 8(1); UNTOC art. 18(15)(f)). The
payload schema refuses it with a 422 naming the field, on every door that takes one (signed
envelopes, custodial drafts and the web compose form, case requests); the baseline rules'
``present`` test refuses it too (``policies/packs/baseline.yaml``'s cases), for contexts
built elsewhere. Data categories are a closed vocabulary matched without regard to case, and
LED art. 10 special categories need a strict-necessity basis. Nothing refused is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope
from tests.integration.test_case_helpers import (
    fire,
    mla_request,
    open_case,
    problem,
    register_partner,
)
from tests.integration.test_fiu import ANALYST, HEAD, IT, submitted

BLANKS = [
    ("legal_basis", "   "),
    ("legal_basis", "\u00a0\u202f"),
    ("purpose", "\u200b\u2060\ufeff"),
    ("purpose", "\u3000\t\u202e"),
    ("legal_basis", "\u200c\u200d\n"),
]


@pytest.mark.parametrize(("field", "value"), BLANKS)
def test_a_blank_declaration_is_refused_at_the_payload_schema(
    api: Api, sync_engine: Engine, field: str, value: str
) -> None:
    before = count_rows(sync_engine, "messages")
    env = envelope(api.world.keys["de.bka"], **{field: value})
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("schema-violation"), problem
    assert problem["errors"][0]["field"] == f"payload.{field}", problem
    assert "invisible characters" in problem["detail"], problem
    assert count_rows(sync_engine, "messages") == before
    assert count_rows(sync_engine, "outbox") == 0


@pytest.mark.parametrize(("field", "value"), BLANKS)
def test_a_blank_declaration_in_a_draft_is_refused(
    api: Api, sync_engine: Engine, field: str, value: str
) -> None:
    """The door of custodial senders and the web compose form: the same schema."""
    before = count_rows(sync_engine, "messages")
    draft = {
        "type": "intel.message",
        "recipient": "nl.fiu",
        "legal_basis": "UNTOC art. 27",
        "purpose": "criminal_investigation",
        field: value,
    }
    r = api.post("/v1/messages", as_="it.officer", json={"draft": draft})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].endswith(field), r.text
    assert count_rows(sync_engine, "messages") == before


@pytest.mark.parametrize(("field", "value"), BLANKS[:3])
def test_a_blank_declaration_in_a_case_request_is_refused(
    api: Api, sync_engine: Engine, field: str, value: str
) -> None:
    before = count_rows(sync_engine, "cases")
    problem = open_case(api, expect=422, request=mla_request(**{field: value}))
    assert problem["errors"][0]["field"].endswith(field), problem
    assert "invisible characters" in problem["detail"], problem
    assert count_rows(sync_engine, "cases") == before


def test_a_padded_declaration_is_accepted(api: Api) -> None:
    env = envelope(api.world.keys["de.bka"], legal_basis="\u00a0UNTOC art. 27 ")
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text


def test_an_unknown_data_category_is_a_schema_violation(api: Api, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "messages")
    env = envelope(api.world.keys["de.bka"], data_categories=["vessel_movement", "gossip"])
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"][0]["field"] == "payload.data_categories.1", problem
    assert "'gossip' is not a data category" in problem["detail"], problem
    assert "health" in problem["detail"]  # the accepted values are named
    assert count_rows(sync_engine, "messages") == before


def test_data_categories_match_without_regard_to_case(api: Api) -> None:
    env = envelope(api.world.keys["de.bka"], data_categories=["Vessel-Movement", "STATISTICS"])
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text


SUBJECTS = [{"ref": "p1", "category": "suspect"}]


@pytest.mark.parametrize(
    "category", ["health", "Health", "HEALTH", "BIOMETRIC", "Racial or ethnic origin"]
)
def test_a_special_category_needs_a_strict_necessity_basis(
    api: Api, sync_engine: Engine, category: str
) -> None:
    """LED art. 10: special categories only where strictly necessary, on a declared basis."""
    key = api.world.keys["de.bka"]
    before = count_rows(sync_engine, "messages")
    bare = envelope(key, data_categories=[category], data_subjects=SUBJECTS)
    r = api.post("/v1/messages", as_="de.system", json=bare)
    assert r.status_code == 403, r.text
    assert "LED10.special-categories" in r.text
    assert "LED art. 10" in r.text
    assert count_rows(sync_engine, "messages") == before
    based = envelope(
        key,
        data_categories=[category],
        data_subjects=SUBJECTS,
        special_category_basis="authorised_by_law",
    )
    r = api.post("/v1/messages", as_="de.system", json=based)
    assert r.status_code == 202, r.text


@pytest.fixture
def partner(api: Api) -> dict[str, str]:
    return register_partner(api, IT, "fiu", {ANALYST: "officer", HEAD: "supervisor"})


@pytest.mark.parametrize("category", ["HEALTH", "Genetic"])
def test_a_case_event_with_a_special_category_needs_the_basis_too(
    api: Api, sync_engine: Engine, partner: dict[str, str], category: str
) -> None:
    """The door of case events: an FIU response naming health data (in any spelling) without
    a strict-necessity basis is refused (LED art. 10), and nothing is stored; with the basis,
    the same response goes."""
    case = submitted(api)
    fire(api, case["id"], "acknowledge", ANALYST)
    fire(api, case["id"], "process", ANALYST)
    body = {
        "kind": "full",
        "summary": "Medical records of the account holder",
        "permitted_purposes": ["money_laundering_analysis"],
        "data_categories": [category, "personal"],
        "data_subject_categories": ["suspect"],
    }
    before = count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"])
    p = problem(api, case["id"], "respond", ANALYST, body, status=403)
    assert "LED10.special-categories" in [r["rule"] for r in p["reasons"]], p
    assert count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"]) == before
    based = {**body, "special_category_basis": "authorised_by_law"}
    assert fire(api, case["id"], "respond", ANALYST, based)["case"]["state"] == "RESPONDED"


def test_an_unknown_category_in_a_case_event_is_a_schema_violation(
    api: Api, partner: dict[str, str]
) -> None:
    case = submitted(api)
    fire(api, case["id"], "acknowledge", ANALYST)
    fire(api, case["id"], "process", ANALYST)
    body = {"kind": "full", "permitted_purposes": ["x"], "data_categories": ["gossip"]}
    p = problem(api, case["id"], "respond", ANALYST, body)
    assert p["type"].endswith("schema-violation"), p
    assert "'gossip' is not a data category" in p["detail"], p
