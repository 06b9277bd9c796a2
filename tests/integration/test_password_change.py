"""A person changes their password; tokens and web sessions issued before are refused
afterwards, as they are after the account is disabled (issue 12, "Login")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import PASSWORD, Api
from tests.integration.web_helpers import Browser, csrf_of

NEW = "a brand new passphrase"


def _token(api: Api, login: str, password: str = PASSWORD) -> Any:
    data = {"grant_type": "password", "username": login, "password": password}
    return api.client.post("/v1/auth/token", data=data)


def _change(api: Api, token: str, current: str, new: str) -> Any:
    return api.client.put(
        "/v1/accounts/me/password",
        headers={"Authorization": f"Bearer {token}"},
        json={"current_password": current, "new_password": new},
    )


def _whoami(api: Api, token: str) -> int:
    r = api.client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    return int(r.status_code)


@pytest.mark.parametrize("login", ["it.officer", "it.supervisor", "it.admin", "oversight"])
def test_each_person_changes_their_password_and_old_tokens_stop(
    api: Api, sync_engine: Engine, login: str
) -> None:
    old = _token(api, login).json()["access_token"]
    other = api.token(login)  # a second token issued before the change
    assert _whoami(api, old) == 200
    r = _change(api, old, PASSWORD, NEW)
    assert r.status_code == 204, r.text
    assert _whoami(api, old) == 401
    assert _whoami(api, other) == 401
    assert _token(api, login).status_code == 401  # the old password
    fresh = _token(api, login, NEW)
    assert fresh.status_code == 200
    assert _whoami(api, fresh.json()["access_token"]) == 200
    with sync_engine.connect() as conn:
        (leaf,) = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'account:password-changed'")
        ).all()
    body = json.loads(bytes(leaf[0]))
    assert body["account"] == api.world.account_ids[login]
    assert NEW not in json.dumps(body)
    assert PASSWORD not in json.dumps(body)


def test_a_wrong_current_password_is_a_failed_login(api: Api, sync_engine: Engine) -> None:
    token = api.token("it.officer")
    r = _change(api, token, "not the password at all", NEW)
    assert r.status_code == 401, r.text
    with sync_engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(text("SELECT kind FROM audit_events")).all()]
    assert "auth:failed" in kinds
    assert "account:password-changed" not in kinds
    assert _whoami(api, token) == 200


def test_a_short_new_password_is_refused(api: Api) -> None:
    r = _change(api, api.token("it.officer"), PASSWORD, "too short")
    assert r.status_code == 422, r.text
    assert "12 characters" in r.json()["detail"]


def test_a_system_has_no_password_to_change(api: Api) -> None:
    r = _change(api, api.token("de.system"), "whatever it is", NEW)
    assert r.status_code == 403, r.text


def test_web_sessions_end_on_a_password_change(api: Api) -> None:
    browser = Browser(api.client)
    assert browser.sign_in("it.officer").status_code == 303
    assert browser.get("/").status_code == 200
    assert _change(api, api.token("it.officer"), PASSWORD, NEW).status_code == 204
    r = browser.get("/")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/sign-in")


def test_tokens_from_before_a_disable_stay_refused_when_enabled_again(
    api: Api, sync_engine: Engine
) -> None:
    token = api.token("it.officer")
    account_id = api.world.account_ids["it.officer"]
    assert api.post(f"/v1/accounts/{account_id}/disable", as_="it.admin").status_code == 200
    assert _whoami(api, token) == 401
    with sync_engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET active = true WHERE id = :id"), {"id": account_id})
    assert _whoami(api, token) == 401
    assert _whoami(api, api.token("it.officer")) == 200


# --- a temporary password the node made must be changed first --------------------------


def _reset(api: Api, login: str) -> str:
    account_id = api.world.account_ids[login]
    r = api.post(f"/v1/accounts/{account_id}/secret-reset", as_="it.admin")
    assert r.status_code == 200, r.text
    return str(r.json()["secret"])


def test_after_a_reset_the_api_opens_only_the_password_change(
    api: Api, sync_engine: Engine
) -> None:
    temporary = _reset(api, "it.officer")
    token = _token(api, "it.officer", temporary).json()["access_token"]
    refused = api.client.get("/v1/messages", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:palermo:problem:password-change-required"
    assert "PUT /v1/accounts/me/password" in problem["detail"]
    assert _whoami(api, token) == 403
    assert _change(api, token, temporary, NEW).status_code == 204
    fresh = _token(api, "it.officer", NEW).json()["access_token"]
    assert _whoami(api, fresh) == 200
    listed = api.client.get("/v1/messages", headers={"Authorization": f"Bearer {fresh}"})
    assert listed.status_code == 200
    with sync_engine.connect() as conn:
        flag = conn.execute(
            text("SELECT password_change_required FROM accounts WHERE login = 'it.officer'")
        ).scalar_one()
    assert not flag


def test_a_reset_of_a_system_secret_leaves_it_working(api: Api) -> None:
    account_id = api.world.account_ids["de.system"]
    r = api.post(f"/v1/accounts/{account_id}/secret-reset", as_="it.admin")
    assert r.status_code == 200, r.text
    data = {
        "grant_type": "client_credentials",
        "client_id": "de.system",
        "client_secret": r.json()["secret"],
    }
    token = api.client.post("/v1/auth/token", data=data).json()["access_token"]
    assert _whoami(api, token) == 200  # a system has no password to choose


def test_an_account_created_with_its_password_is_not_asked_to_change(api: Api) -> None:
    r = api.post(
        "/v1/participants/it.central-authority/accounts",
        as_="it.admin",
        json={
            "kind": "person",
            "login": "it.second",
            "display_name": "Second officer",
            "roles": ["officer"],
            "password": NEW,
        },
    )
    assert r.status_code == 201, r.text
    assert _whoami(api, _token(api, "it.second", NEW).json()["access_token"]) == 200


def test_after_a_reset_every_page_leads_to_the_password_form(api: Api) -> None:
    temporary = _reset(api, "it.officer")
    browser = Browser(api.client)
    assert browser.sign_in("it.officer", password=temporary).status_code == 303
    for page in ("/", "/inbox", "/cases", "/preferences"):
        r = browser.get(page)
        assert r.status_code == 303, page
        assert r.headers["location"] == "/preferences/password?required=1"
    form = browser.get("/preferences/password?required=1")
    assert form.status_code == 200
    assert "Your password is a temporary one" in form.text
    token = csrf_of(form.text)
    changed = browser.client.post(
        "/preferences/password",
        data={"csrf_token": token, "current_password": temporary, "new_password": NEW},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert browser.sign_in("it.officer", password=NEW).status_code == 303
    assert browser.get("/").status_code == 200
