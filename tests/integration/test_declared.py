"""Declared means declared (issue 14 item 4): a legal basis or purpose of Unicode spaces or
format characters alone is refused by the baseline rules (LED arts. 4(1)(b), 8(1)) through
the API, with the rule that decided; nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("legal_basis", "   ", "baseline.legal-basis-missing"),
        ("legal_basis", "\u00a0\u202f", "baseline.legal-basis-missing"),
        ("purpose", "\u200b\u2060\ufeff", "baseline.purpose-missing"),
        ("purpose", "\u3000\t\u202e", "baseline.purpose-missing"),
    ],
)
def test_a_blank_declaration_is_refused(
    api: Api, sync_engine: Engine, field: str, value: str, rule: str
) -> None:
    before = count_rows(sync_engine, "messages")
    env = envelope(api.world.keys["de.bka"], **{field: value})
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 403, r.text
    assert rule in r.text
    assert count_rows(sync_engine, "messages") == before


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


@pytest.mark.parametrize("category", ["health", "Health", "BIOMETRIC", "Racial or ethnic origin"])
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
