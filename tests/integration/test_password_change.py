"""A person changes their password; tokens and web sessions issued before are refused
afterwards, as they are after the account is disabled (issue 12, "Login")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import PASSWORD, Api
from tests.integration.web_helpers import Browser

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
