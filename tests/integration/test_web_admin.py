"""The operator's pages through HTTP, as a browser uses them: participants and keys,
accounts, delivery and policy. Each action writes the audit leaves its API endpoint writes;
every wrong form is a 4xx with an error summary and nothing stored; secrets are shown once
and stored only as hashes."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.app import create_app
from broker.core import crypto
from broker.core.settings import Settings
from tests.conftest import Api, World, count_rows
from tests.integration.messaging_helpers import envelope
from tests.integration.test_web import ADMINS, WEB_MATRIX
from tests.integration.web_helpers import Browser, csrf_of

POLICY_CONTEXT = (
    '{"sender": {"id": "de.bka", "kind": "police"},'
    ' "recipient": {"id": "us.central-authority", "kind": "central_authority"},'
    ' "message_type": "intel.message", "legal_basis": "UNTOC art. 27",'
    ' "purpose": "investigation", "handling_code": "H0", "evaluation": "B2",'
    ' "statement_kind": "fact"}'
)


@pytest.fixture
def admin(api: Api) -> Browser:
    browser = Browser(api.client)
    assert browser.sign_in("it.admin").status_code == 303
    return browser


def _last_leaf_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar_one())


def _kinds_since(engine: Engine, after: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind FROM audit_events WHERE id > :n ORDER BY id"), {"n": after}
        ).all()
    return [r[0] for r in rows]


def _public_key() -> str:
    _private, public = crypto.generate_signing_key()
    return base64.b64encode(public).decode()


def _post(browser: Browser, page: str, action: str, data: dict[str, Any]) -> Any:
    token = csrf_of(browser.client.get(page).text)
    return browser.client.post(action, data={"csrf_token": token, **data}, follow_redirects=False)


# --- who may ------------------------------------------------------------------------------


def test_an_officer_cannot_open_the_operator_pages(api: Api) -> None:
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    r = officer.get("/admin/participants")
    assert r.status_code == 403
    assert "You cannot open this page" in r.text
    home = officer.get("/")
    assert 'href="/admin/participants"' not in home.text
    assert 'href="/reference"' in home.text


def test_no_operator_page_answers_500_to_an_empty_form(admin: Browser) -> None:
    token = csrf_of(admin.get("/").text)
    for method, path, allowed in WEB_MATRIX:
        if allowed != ADMINS:
            continue
        data = {"csrf_token": token} if method == "POST" else None
        r = admin.client.request(method, path, data=data, follow_redirects=False)
        assert r.status_code < 500, (method, path, r.status_code)


def test_a_form_without_the_token_is_refused(admin: Browser, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "participants")
    r = admin.client.post(
        "/admin/participants",
        data={"id": "it.new", "kind": "police", "display_name": "New"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert count_rows(sync_engine, "participants") == before


# --- participants and keys ----------------------------------------------------------------


def test_register_writes_the_leaves_the_api_writes(
    admin: Browser, api: Api, sync_engine: Engine
) -> None:
    mark = _last_leaf_id(sync_engine)
    r = api.post(
        "/v1/participants",
        as_="it.admin",
        json={"id": "es.api-police", "kind": "police", "display_name": "By the API"},
    )
    assert r.status_code == 201, r.text
    api_kinds = _kinds_since(sync_engine, mark)
    mark = _last_leaf_id(sync_engine)
    page = admin.get("/admin/participants")
    assert page.status_code == 200
    assert "it.central-authority" in page.text
    r = _post(
        admin,
        "/admin/participants",
        "/admin/participants",
        {"id": "es.web-police", "kind": "police", "display_name": "By the web"},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/admin/participants/es.web-police?registered=1"
    assert _kinds_since(sync_engine, mark) == api_kinds == ["participant:registered"]
    shown = admin.get(r.headers["location"])
    assert "The participant is registered" in shown.text


def test_register_errors_link_to_each_field_and_keep_the_input(
    admin: Browser, sync_engine: Engine
) -> None:
    before = count_rows(sync_engine, "participants")
    r = _post(
        admin,
        "/admin/participants",
        "/admin/participants",
        {"id": "not an id", "kind": "", "display_name": "Kept name"},
    )
    assert r.status_code == 422
    assert 'class="error-summary"' in r.text
    assert 'href="#p-id"' in r.text
    assert 'href="#p-kind"' in r.text
    assert 'value="not an id"' in r.text
    assert 'value="Kept name"' in r.text
    taken = _post(
        admin,
        "/admin/participants",
        "/admin/participants",
        {"id": "nl.fiu", "kind": "fiu", "display_name": "Again"},
    )
    assert taken.status_code == 409
    assert "This is already taken" in taken.text
    assert count_rows(sync_engine, "participants") == before


def test_suspend_and_reactivate(admin: Browser, sync_engine: Engine) -> None:
    page = "/admin/participants/nl.fiu"
    r = _post(admin, page, page + "/status", {"status": "suspended"})
    assert r.status_code == 303
    assert count_rows(sync_engine, "participants", "id = 'nl.fiu' AND status = 'suspended'")
    assert "Reactivate the participant" in admin.get(page).text
    r = _post(admin, page, page + "/status", {"status": "active"})
    assert r.status_code == 303
    assert count_rows(sync_engine, "participants", "id = 'nl.fiu' AND status = 'active'")
    wrong = _post(admin, page, page + "/status", {"status": "deleted"})
    assert wrong.status_code == 422
    assert 'href="#status-button"' in wrong.text


def test_add_a_pasted_key_and_a_custodial_one(
    admin: Browser, api: Api, sync_engine: Engine
) -> None:
    page = "/admin/participants/nl.fiu"
    public = _public_key()
    mark = _last_leaf_id(sync_engine)
    r = _post(admin, page, page + "/keys", {"purpose": "signing", "public_key": public})
    assert r.status_code == 303, r.text
    assert _kinds_since(sync_engine, mark) == ["key:registered"]
    kid = crypto.key_id(base64.b64decode(public))
    assert kid in admin.get(page).text
    mark = _last_leaf_id(sync_engine)
    r = _post(admin, page, page + "/keys", {"purpose": "encryption", "source": "generate"})
    assert r.status_code == 303, r.text
    web_kinds = _kinds_since(sync_engine, mark)
    mark = _last_leaf_id(sync_engine)
    made = api.post(
        "/v1/participants/nl.fiu/keys",
        as_="it.admin",
        json={"purpose": "encryption", "generate": True},
    )
    assert made.status_code == 201
    assert web_kinds == _kinds_since(sync_engine, mark) == ["key:generated"]


def test_a_bad_key_is_refused_with_the_input_kept(admin: Browser, sync_engine: Engine) -> None:
    page = "/admin/participants/nl.fiu"
    before = count_rows(sync_engine, "participant_keys")
    for given in ("not base64!", base64.b64encode(b"short").decode(), ""):
        r = _post(admin, page, page + "/keys", {"purpose": "signing", "public_key": given})
        assert r.status_code == 422, given
        assert 'href="#k-public_key"' in r.text
        if given:
            assert given in r.text
    r = _post(admin, page, page + "/keys", {"purpose": "other", "public_key": _public_key()})
    assert r.status_code == 422
    assert 'href="#k-purpose"' in r.text
    assert count_rows(sync_engine, "participant_keys") == before


def test_rotate_keeps_the_old_key_for_its_grace_period(
    admin: Browser, api: Api, sync_engine: Engine
) -> None:
    page = "/admin/participants/us.central-authority"
    old = [
        k
        for k in api.get("/v1/participants/us.central-authority", as_="it.admin").json()["keys"]
        if k["purpose"] == "signing"
    ]
    mark = _last_leaf_id(sync_engine)
    r = _post(admin, page, page + "/keys/rotate", {"purpose": "signing", "grace_days": "3"})
    assert r.status_code == 303, r.text
    web_kinds = _kinds_since(sync_engine, mark)
    assert web_kinds == ["key:generated", "key:rotated"]
    keys = api.get("/v1/participants/us.central-authority", as_="it.admin").json()["keys"]
    for k in keys:
        if k["kid"] in {o["kid"] for o in old}:
            end = dt.datetime.fromisoformat(k["not_after"])
            left = end - dt.datetime.now(dt.UTC)
            assert dt.timedelta(days=2, hours=23) < left <= dt.timedelta(days=3)
            assert k["revoked_at"] is None
    mark = _last_leaf_id(sync_engine)
    public = _public_key()
    r = api.post(
        "/v1/participants/us.central-authority/keys/rotate",
        as_="it.admin",
        json={"purpose": "signing", "public_key": public, "grace_seconds": 60},
    )
    assert r.status_code == 201, r.text
    assert r.json()["custodial"] is False
    assert _kinds_since(sync_engine, mark) == ["key:registered", "key:rotated"]
    wrong = _post(admin, page, page + "/keys/rotate", {"purpose": "signing", "grace_days": "x"})
    assert wrong.status_code == 422
    assert 'href="#r-grace_days"' in wrong.text
    assert 'value="x"' in wrong.text


def test_revoke_is_checked_first_then_done(admin: Browser, api: Api, sync_engine: Engine) -> None:
    keys = api.get("/v1/participants/nl.fiu", as_="it.admin").json()["keys"]
    kid = keys[0]["kid"]
    page = f"/admin/participants/nl.fiu/keys/{kid}/revoke"
    assert admin.get(page).status_code == 200
    short = _post(admin, page, page, {"reason": "x"})
    assert short.status_code == 422
    assert 'href="#reason"' in short.text
    mark = _last_leaf_id(sync_engine)
    check = _post(admin, page, page, {"reason": "private key exposed", "action": "check"})
    assert check.status_code == 200
    assert "Check before you revoke" in check.text
    assert _kinds_since(sync_engine, mark) == []
    assert count_rows(sync_engine, "participant_keys", "kid = :k AND revoked_at IS NULL", k=kid)
    done = _post(admin, page, page, {"reason": "private key exposed", "action": "revoke"})
    assert done.status_code == 303
    assert _kinds_since(sync_engine, mark) == ["key:revoked"]
    again = _post(admin, page, page, {"reason": "private key exposed", "action": "revoke"})
    assert again.status_code == 409
    mark = _last_leaf_id(sync_engine)
    other = keys[1]["kid"]
    r = api.post(
        f"/v1/participants/nl.fiu/keys/{other}/revoke", as_="it.admin", json={"reason": "api"}
    )
    assert r.status_code == 200
    assert _kinds_since(sync_engine, mark) == ["key:revoked"]


# --- accounts -----------------------------------------------------------------------------


def _secret_of(html: str) -> str:
    match = re.search(r'<code class="digest" id="secret">([^<]+)</code>', html)
    assert match, "no secret on the page"
    return match.group(1)


def test_a_system_account_gets_its_secret_once(
    admin: Browser, api: Api, sync_engine: Engine
) -> None:
    page = "/admin/participants/nl.fiu/accounts"
    mark = _last_leaf_id(sync_engine)
    r = _post(
        admin,
        page,
        page,
        {"kind": "system", "login": "nl.goaml-bridge", "display_name": "Bridge", "roles": "system"},
    )
    assert r.status_code == 201, r.text
    secret = _secret_of(r.text)
    assert _kinds_since(sync_engine, mark) == ["account:created"]
    assert secret not in admin.get(page).text
    with sync_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT secret_hash FROM accounts WHERE login = 'nl.goaml-bridge'")
        ).scalar_one()
        leaves = conn.execute(text("SELECT leaf FROM audit_events")).all()
    assert secret not in stored
    assert stored.startswith("$argon2")
    assert all(secret.encode() not in bytes(row[0]) for row in leaves if row[0] is not None)
    token = api.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "nl.goaml-bridge",
            "client_secret": secret,
        },
    )
    assert token.status_code == 200, token.text


def test_account_errors_and_a_person_signs_in_with_the_temporary_password(
    admin: Browser, api: Api, sync_engine: Engine
) -> None:
    page = "/admin/participants/nl.fiu/accounts"
    before = count_rows(sync_engine, "accounts")
    wrong = _post(
        admin,
        page,
        page,
        {"kind": "person", "login": "x", "display_name": "Kept", "roles": ["admin", "officer"]},
    )
    assert wrong.status_code == 422
    assert 'href="#a-login"' in wrong.text
    assert 'value="Kept"' in wrong.text
    mixed = _post(
        admin,
        page,
        page,
        {"kind": "person", "login": "nl.mixed", "display_name": "M", "roles": ["admin", "officer"]},
    )
    assert mixed.status_code == 422
    assert 'href="#a-roles"' in mixed.text
    taken = _post(
        admin,
        page,
        page,
        {"kind": "person", "login": "it.officer", "display_name": "T", "roles": "officer"},
    )
    assert taken.status_code == 409
    assert count_rows(sync_engine, "accounts") == before
    made = _post(
        admin,
        page,
        page,
        {"kind": "person", "login": "nl.analyst", "display_name": "Analyst", "roles": "officer"},
    )
    assert made.status_code == 201
    password = _secret_of(made.text)
    admin.client.cookies.clear()
    assert admin.sign_in("nl.analyst", password=password).status_code == 303


def test_a_reset_writes_the_leaf_the_api_writes_and_ends_the_old_password(
    admin: Browser, api: Api, world: World, sync_engine: Engine
) -> None:
    officer = world.account_ids["nl.officer"]
    supervisor = world.account_ids["nl.supervisor"]
    page = "/admin/participants/nl.fiu/accounts"
    mark = _last_leaf_id(sync_engine)
    check = _post(admin, page, f"/admin/accounts/{officer}/secret-reset", {})
    assert check.status_code == 200
    assert "Check before you reset the password" in check.text
    assert 'name="confirm" value="yes"' in check.text
    assert _kinds_since(sync_engine, mark) == []  # nothing changed before the second post
    reset = _post(admin, page, f"/admin/accounts/{officer}/secret-reset", {"confirm": "yes"})
    assert reset.status_code == 200
    password = _secret_of(reset.text)
    assert "no longer works" in reset.text
    assert password not in admin.get(page).text
    web_kinds = _kinds_since(sync_engine, mark)
    mark = _last_leaf_id(sync_engine)
    by_api = api.post(f"/v1/accounts/{supervisor}/secret-reset", as_="it.admin")
    assert by_api.status_code == 200
    assert by_api.headers["cache-control"] == "no-store"
    assert web_kinds == _kinds_since(sync_engine, mark) == ["account:secret-reset"]
    with sync_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT secret_hash FROM accounts WHERE id = :i"), {"i": officer}
        ).scalar_one()
    assert password not in stored
    admin.client.cookies.clear()
    assert admin.sign_in("nl.officer").status_code == 401  # the old password is gone
    assert admin.sign_in("nl.officer", password=password).status_code == 303


def test_roles_and_disable_write_the_leaves_the_api_writes(
    admin: Browser, api: Api, world: World, sync_engine: Engine
) -> None:
    officer = world.account_ids["nl.officer"]
    page = "/admin/participants/nl.fiu/accounts"
    mark = _last_leaf_id(sync_engine)
    roles = _post(
        admin, page, f"/admin/accounts/{officer}/roles", {"roles": ["officer", "supervisor"]}
    )
    assert roles.status_code == 303
    bad = _post(admin, page, f"/admin/accounts/{officer}/roles", {"roles": ["admin", "officer"]})
    assert bad.status_code == 422
    assert f'href="#roles-{officer}"' in bad.text
    check = _post(admin, page, f"/admin/accounts/{officer}/disable", {})
    assert check.status_code == 200
    assert "Check before you disable" in check.text
    assert f'action="/admin/accounts/{officer}/disable"' in check.text
    assert count_rows(sync_engine, "accounts", f"id = '{officer}' AND active")  # still active
    disabled = _post(admin, page, f"/admin/accounts/{officer}/disable", {"confirm": "yes"})
    assert disabled.status_code == 303
    web_kinds = _kinds_since(sync_engine, mark)
    other = world.account_ids["us.officer"]
    mark = _last_leaf_id(sync_engine)
    r = api.request(
        "PUT", f"/v1/accounts/{other}/roles", as_="it.admin", json={"roles": ["supervisor"]}
    )
    assert r.status_code == 200
    assert api.post(f"/v1/accounts/{other}/disable", as_="it.admin").status_code == 200
    assert web_kinds == _kinds_since(sync_engine, mark) == ["account:updated"] * 2
    assert "Disabled" in admin.get(page).text


def test_the_last_admin_cannot_be_disabled(admin: Browser, world: World) -> None:
    me = world.account_ids["it.admin"]
    page = "/admin/participants/it.central-authority/accounts"
    r = _post(admin, page, f"/admin/accounts/{me}/disable", {"confirm": "yes"})
    assert r.status_code == 409
    assert f'href="#disable-{me}"' in r.text


# --- delivery -----------------------------------------------------------------------------


def test_set_a_webhook_with_validation(admin: Browser, api: Api, sync_engine: Engine) -> None:
    page = "/admin/participants/nl.fiu/adapter"
    assert admin.get(page).status_code == 200
    for config, status in (("{not json", 422), ("[1]", 422), ('{"url": "ftp://x"}', 422)):
        r = _post(admin, page, page, {"adapter": "webhook", "config": config})
        assert r.status_code == status, config
        assert 'href="#d-config"' in r.text
        assert "error-summary" in r.text
    unknown = _post(admin, page, page, {"adapter": "carrier-pigeon", "config": "{}"})
    assert unknown.status_code == 422
    assert 'href="#d-adapter"' in unknown.text
    assert count_rows(sync_engine, "participants", "id = 'nl.fiu' AND adapter = 'inbox'")
    mark = _last_leaf_id(sync_engine)
    good = _post(
        admin, page, page, {"adapter": "webhook", "config": '{"url": "https://nl.example/in"}'}
    )
    assert good.status_code == 303, good.text
    web_kinds = _kinds_since(sync_engine, mark)
    mark = _last_leaf_id(sync_engine)
    r = api.request(
        "PUT",
        "/v1/participants/de.bka/adapter",
        as_="it.admin",
        json={"adapter": "webhook", "config": {"url": "https://de.example/in"}},
    )
    assert r.status_code == 200
    assert web_kinds == _kinds_since(sync_engine, mark) == ["participant:updated"]
    assert "https://nl.example/in" in admin.get(page).text


def _dead_letter(api: Api, sync_engine: Engine) -> str:
    sent = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert sent.status_code == 202, sent.text
    message_id = str(sent.json()["id"])
    with sync_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE outbox SET dead_lettered_at = :now, attempts = 8,"
                " last_error = 'HTTP 503' WHERE message_id = :m"
            ),
            {"now": dt.datetime.now(dt.UTC), "m": message_id},
        )
        conn.execute(
            text("UPDATE messages SET status = 'dead_lettered' WHERE id = :m"), {"m": message_id}
        )
    return message_id


def test_requeue_a_dead_letter(admin: Browser, api: Api, sync_engine: Engine) -> None:
    message_id = _dead_letter(api, sync_engine)
    page = admin.get("/admin/delivery")
    assert page.status_code == 200
    assert message_id in page.text
    assert "HTTP 503" in page.text
    mark = _last_leaf_id(sync_engine)
    r = _post(admin, "/admin/delivery", f"/admin/delivery/dead-letters/{message_id}/requeue", {})
    assert r.status_code == 303
    assert _kinds_since(sync_engine, mark) == ["message:requeued"]
    assert count_rows(sync_engine, "outbox", "message_id = :m AND attempts = 0", m=message_id)
    again = _post(
        admin, "/admin/delivery", f"/admin/delivery/dead-letters/{message_id}/requeue", {}
    )
    assert again.status_code == 404
    other = _dead_letter(api, sync_engine)
    mark = _last_leaf_id(sync_engine)
    by_api = api.post(f"/v1/delivery/dead-letters/{other}/requeue", as_="it.admin")
    assert by_api.status_code == 200
    assert _kinds_since(sync_engine, mark) == ["message:requeued"]


# --- policy and reference -----------------------------------------------------------------


def test_policy_page_and_explain(admin: Browser, api: Api) -> None:
    page = admin.get("/admin/policy")
    assert page.status_code == 200
    read = api.get("/v1/policy", as_="it.admin").json()
    assert read["policy_pack"] in page.text
    assert read["packs"][0]["hash"] in page.text
    assert read["packs"][0]["rules"][0]["citation"] in page.text
    bad = _post(admin, "/admin/policy", "/admin/policy/explain", {"context": "{oops"})
    assert bad.status_code == 422
    assert 'href="#e-context"' in bad.text
    assert "{oops" in bad.text
    wrong = _post(admin, "/admin/policy", "/admin/policy/explain", {"context": '{"sender": 3}'})
    assert wrong.status_code == 422
    assert 'href="#e-context"' in wrong.text
    good = _post(admin, "/admin/policy", "/admin/policy/explain", {"context": POLICY_CONTEXT})
    assert good.status_code == 200, good.text
    assert "rules evaluated" in good.text


def test_reference_data_for_every_signed_in_person(api: Api) -> None:
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    page = officer.get("/reference")
    assert page.status_code == 200
    assert 'id="state-FR"' in page.text
    assert "central_authority" in page.text
    assert "untoc" in page.text


def test_off_a_hub_an_admin_manages_only_its_own_accounts(settings: Settings) -> None:
    own_node = settings.model_copy(update={"hub_operator": False})
    with TestClient(create_app(own_node)) as client:
        admin = Browser(client)
        assert admin.sign_in("it.admin").status_code == 303
        assert admin.get("/admin/participants/it.central-authority/accounts").status_code == 200
        other = admin.get("/admin/participants/nl.fiu/accounts")
        assert other.status_code == 403
        assert "nl.fiu" not in admin.get("/admin/accounts").text
        r = _post(
            admin,
            "/admin/accounts",
            "/admin/participants/nl.fiu/accounts",
            {"kind": "system", "login": "nl.sneaky", "display_name": "S", "roles": "system"},
        )
        assert r.status_code == 403
