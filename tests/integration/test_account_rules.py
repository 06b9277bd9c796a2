"""Who may manage which accounts, and which roles go together (issue 12, "Roles").

Admin stands alone in an account; an admin manages its own participant's accounts unless the
node is a hub operator (PALERMO_HUB_OPERATOR); the last active admin of a participant cannot
be disabled nor lose the role; account leaves name the participant and the login (as a keyed
digest, docs/audit.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.accounts.service import login_digest
from broker.app import create_app
from broker.core.context import node_context
from tests.conftest import Api, World

PERSON = {
    "kind": "person",
    "display_name": "Analyst",
    "password": "a sufficiently long passphrase",
}


@pytest.fixture
def national(api: Api, world: World) -> Iterator[Api]:
    """The same node, configured as a national node rather than a hub operator."""
    settings = api.settings.model_copy(update={"hub_operator": False})
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, world)


def _leaves(engine: Engine, kind: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


@pytest.mark.parametrize(
    "roles",
    [["admin", "oversight"], ["admin", "officer"], ["admin", "supervisor"]],
)
def test_admin_cannot_be_combined_with_other_roles(api: Api, roles: list[str]) -> None:
    body = {**PERSON, "login": "it.mixed", "roles": roles}
    r = api.post("/v1/participants/it.central-authority/accounts", as_="it.admin", json=body)
    assert r.status_code == 422, r.text
    assert "admin cannot be combined" in r.json()["detail"]
    listed = api.get("/v1/participants/it.central-authority/accounts", as_="it.admin").json()
    assert "it.mixed" not in {a["login"] for a in listed["items"]}


def test_a_national_admin_manages_only_its_own_participant(national: Api) -> None:
    body = {**PERSON, "login": "de.analyst", "roles": ["officer"]}
    r = national.post("/v1/participants/de.bka/accounts", as_="it.admin", json=body)
    assert r.status_code == 403, r.text
    r = national.get("/v1/participants/de.bka/accounts", as_="it.admin")
    assert r.status_code == 403, r.text
    us_officer = national.world.account_ids["us.officer"]
    # Another participant's account is as if it did not exist.
    r = national.post(f"/v1/accounts/{us_officer}/disable", as_="it.admin")
    assert r.status_code == 404, r.text
    r = national.request(
        "PUT", f"/v1/accounts/{us_officer}/roles", as_="it.admin", json={"roles": ["admin"]}
    )
    assert r.status_code == 404, r.text
    # Its own participant's accounts it manages.
    body = {**PERSON, "login": "it.analyst", "roles": ["officer"]}
    r = national.post("/v1/participants/it.central-authority/accounts", as_="it.admin", json=body)
    assert r.status_code == 201, r.text


def test_a_hub_operator_admin_manages_every_participant(api: Api) -> None:
    body = {**PERSON, "login": "de.analyst", "roles": ["officer"]}
    r = api.post("/v1/participants/de.bka/accounts", as_="it.admin", json=body)
    assert r.status_code == 201, r.text


def test_the_last_admin_cannot_be_disabled_nor_lose_the_role(api: Api) -> None:
    admin = api.world.account_ids["it.admin"]
    r = api.post(f"/v1/accounts/{admin}/disable", as_="it.admin")
    assert r.status_code == 409, r.text
    assert "last active admin" in r.json()["detail"]
    r = api.request(
        "PUT", f"/v1/accounts/{admin}/roles", as_="it.admin", json={"roles": ["officer"]}
    )
    assert r.status_code == 409, r.text
    assert api.get("/v1/auth/whoami", as_="it.admin").json()["roles"] == ["admin"]
    # With a second admin, the first may go.
    body = {**PERSON, "login": "it.admin2", "roles": ["admin"]}
    r = api.post("/v1/participants/it.central-authority/accounts", as_="it.admin", json=body)
    assert r.status_code == 201, r.text
    r = api.post(f"/v1/accounts/{admin}/disable", as_="it.admin")
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False


def test_roles_are_replaced_under_the_same_rules(api: Api) -> None:
    officer = api.world.account_ids["it.officer"]
    r = api.request(
        "PUT", f"/v1/accounts/{officer}/roles", as_="it.admin", json={"roles": ["supervisor"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["supervisor"]
    assert api.get("/v1/auth/whoami", as_="it.officer").json()["roles"] == ["supervisor"]
    for bad in (["admin", "officer"], [], ["system"], ["nobody"]):
        r = api.request("PUT", f"/v1/accounts/{officer}/roles", as_="it.admin", json={"roles": bad})
        assert r.status_code == 422, (bad, r.text)
    r = api.request(
        "PUT", "/v1/accounts/no-such-account/roles", as_="it.admin", json={"roles": ["officer"]}
    )
    assert r.status_code == 404, r.text


def test_account_leaves_name_the_participant_and_the_login(api: Api, sync_engine: Engine) -> None:
    body = {**PERSON, "login": "de.analyst", "roles": ["officer"]}
    made = api.post("/v1/participants/de.bka/accounts", as_="it.admin", json=body).json()
    api.request(
        "PUT", f"/v1/accounts/{made['id']}/roles", as_="it.admin", json={"roles": ["supervisor"]}
    )
    api.post(f"/v1/accounts/{made['id']}/disable", as_="it.admin")
    digest = login_digest(node_context(api.settings), "de.analyst")
    created = [x for x in _leaves(sync_engine, "account:created") if x["account"] == made["id"]]
    updated = [x for x in _leaves(sync_engine, "account:updated") if x["account"] == made["id"]]
    assert len(created) == 1
    assert len(updated) == 2
    for leaf in created + updated:
        assert leaf["participant"] == "de.bka"
        assert leaf["login_digest"] == digest
        assert "de.analyst" not in json.dumps(leaf)  # the login only as a keyed digest
    assert updated[0]["roles_before"] == ["officer"]
    assert updated[0]["roles"] == ["supervisor"]
    assert updated[1]["active"] is False
