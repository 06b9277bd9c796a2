"""The web app through HTTP, as a browser uses it: sign-in, sessions, CSRF, throttling,
headers, languages, the role matrix, and reading and acknowledging a message."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.app import create_app
from broker.core.settings import Settings
from broker.web.views import router as web_router
from tests.conftest import Api, World, count_rows
from tests.integration.audit_helpers import kept_text
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.web_helpers import Browser, csrf_of

MID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10"
CID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a11"
FID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a12"
KID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a13"
AID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a14"
PID = "zz.matrix-participant"
KEY = "matrix-key-id"
PEOPLE = ["it.officer", "it.supervisor", "it.admin", "oversight"]
EVERYONE = set(PEOPLE)
HANDLERS = {"it.officer", "it.supervisor"}
SUPERVISORS = {"it.supervisor"}
AUDIT_READERS = {"it.officer", "it.supervisor", "oversight"}
ADMINS = {"it.admin"}
OVERSIGHT = {"oversight"}

# (method, path, people who may use it); anonymous callers are sent to sign in.
WEB_MATRIX = [
    ("GET", "/", EVERYONE),
    ("GET", "/preferences", EVERYONE),
    ("POST", "/preferences", EVERYONE),
    ("GET", "/preferences/password", EVERYONE),
    ("POST", "/preferences/password", EVERYONE),
    ("POST", "/sign-out", EVERYONE),
    ("GET", "/inbox", HANDLERS),
    ("GET", "/sent", HANDLERS),
    ("GET", "/compose", HANDLERS),
    ("POST", "/compose", HANDLERS),
    ("GET", f"/messages/{MID}", HANDLERS),
    ("POST", f"/messages/{MID}/content", HANDLERS),
    ("POST", f"/messages/{MID}/receipt", HANDLERS),
    ("GET", "/cases", HANDLERS),
    ("GET", "/cases/approvals", SUPERVISORS),
    ("GET", "/cases/new", HANDLERS),
    ("POST", "/cases/new", HANDLERS),
    ("GET", f"/cases/{CID}", HANDLERS),
    ("GET", f"/cases/{CID}/events/transmit", HANDLERS),
    ("POST", f"/cases/{CID}/events/transmit", HANDLERS),
    ("POST", f"/cases/{CID}/evidence", HANDLERS),
    ("GET", f"/cases/{CID}/evidence/{FID}", HANDLERS),
    ("POST", f"/cases/{CID}/evidence/{FID}", HANDLERS),
    ("GET", f"/cases/{CID}/letter", HANDLERS),
    ("GET", f"/cases/{CID}/threads/feedback", HANDLERS),
    ("POST", f"/cases/{CID}/threads/feedback", HANDLERS),
    ("GET", f"/messages/{MID}/forward", HANDLERS),
    ("POST", f"/messages/{MID}/forward", HANDLERS),
    ("GET", f"/messages/{MID}/forward/sent", HANDLERS),
    ("GET", f"/messages/{MID}/consent-request", HANDLERS),
    ("POST", f"/messages/{MID}/consent-request", HANDLERS),
    ("GET", "/consents", HANDLERS),
    ("GET", f"/consents/{KID}", HANDLERS),
    ("POST", f"/consents/{KID}/grant", HANDLERS),
    ("POST", f"/consents/{KID}/refuse", HANDLERS),
    ("GET", "/fiu/matches", HANDLERS),
    ("POST", "/fiu/matches", HANDLERS),
    ("GET", "/fiu/goaml", HANDLERS),
    ("POST", "/fiu/goaml", HANDLERS),
    ("GET", f"/messages/{MID}/goaml", HANDLERS),
    ("POST", f"/messages/{MID}/goaml", HANDLERS),
    ("POST", f"/messages/{MID}/retention", SUPERVISORS),
    ("GET", "/approvals/messages", SUPERVISORS),
    ("POST", f"/messages/{MID}/approve", SUPERVISORS),
    ("POST", f"/messages/{MID}/reject", SUPERVISORS),
    ("POST", f"/cases/{CID}/retention", SUPERVISORS),
    ("GET", "/audit", AUDIT_READERS),
    ("GET", "/audit/entries/7", AUDIT_READERS),
    ("GET", "/audit/consistency", AUDIT_READERS),
    ("GET", "/reference", EVERYONE),
    ("GET", "/admin/participants", ADMINS),
    ("POST", "/admin/participants", ADMINS),
    ("GET", f"/admin/participants/{PID}", ADMINS),
    ("POST", f"/admin/participants/{PID}/status", ADMINS),
    ("POST", f"/admin/participants/{PID}/keys", ADMINS),
    ("POST", f"/admin/participants/{PID}/keys/rotate", ADMINS),
    ("GET", f"/admin/participants/{PID}/keys/{KEY}/revoke", ADMINS),
    ("POST", f"/admin/participants/{PID}/keys/{KEY}/revoke", ADMINS),
    ("GET", "/admin/accounts", ADMINS),
    ("GET", f"/admin/participants/{PID}/accounts", ADMINS),
    ("POST", f"/admin/participants/{PID}/accounts", ADMINS),
    ("POST", f"/admin/accounts/{AID}/disable", ADMINS),
    ("POST", f"/admin/accounts/{AID}/roles", ADMINS),
    ("POST", f"/admin/accounts/{AID}/secret-reset", ADMINS),
    ("GET", "/admin/delivery", ADMINS),
    ("POST", f"/admin/delivery/dead-letters/{MID}/requeue", ADMINS),
    ("GET", f"/admin/participants/{PID}/adapter", ADMINS),
    ("POST", f"/admin/participants/{PID}/adapter", ADMINS),
    ("GET", "/admin/policy", ADMINS),
    ("POST", "/admin/policy/explain", ADMINS),
    ("GET", "/oversight/statistics", OVERSIGHT),
    ("GET", "/oversight/statistics.csv", OVERSIGHT),
    ("GET", "/oversight/consultations", OVERSIGHT),
    ("GET", "/oversight/consultations.csv", OVERSIGHT),
]
# What the matrix's sample ids stand for in the router's paths.
PLACEHOLDERS = {
    MID: "{message_id}",
    CID: "{case_id}",
    FID: "{file_id}",
    KID: "{consent_id}",
    AID: "{account_id}",
    PID: "{participant_id}",
    KEY: "{kid}",
    "/events/transmit": "/events/{event}",
    "/threads/feedback": "/threads/{workflow}",
    "/audit/entries/7": "/audit/entries/{index}",
}
PUBLIC = {("GET", "/sign-in"), ("POST", "/sign-in"), ("POST", "/language")}
OPS = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def _client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def browser(api: Api) -> Browser:
    return Browser(api.client)


def _leaves(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        ).all()
    return [json.loads(bytes(r[0]) if not isinstance(r[0], str) else r[0]) for r in rows]


# --- signing in ----------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_and_back(browser: Browser) -> None:
    r = browser.get("/inbox?cursor=3")
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?next=/inbox%3Fcursor%3D3"
    page = browser.get(r.headers["location"])
    assert 'name="next" value="/inbox?cursor=3"' in page.text
    signed = browser.sign_in("it.officer", next="/inbox?cursor=3")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/inbox?cursor=3"
    assert browser.get("/inbox").status_code == 200


def test_sign_in_sets_a_strict_http_only_cookie_and_is_audited(
    browser: Browser, sync_engine: Engine, world: World
) -> None:
    r = browser.sign_in("it.officer")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "palermo_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # http://testserver: development
    token = browser.client.cookies["palermo_session"]
    with sync_engine.connect() as conn:
        ids = [row[0] for row in conn.execute(text("SELECT id FROM web_sessions")).all()]
    assert len(ids) == 1
    assert token not in ids  # only its digest is stored
    leaf = _leaves(sync_engine, "signin:succeeded")[-1]
    assert leaf["actor"]["account"] == world.account_ids["it.officer"]
    home = browser.get("/")
    assert home.status_code == 200
    assert "it.central-authority" in home.text


def test_secure_cookie_in_production_settings(settings: Settings) -> None:
    assert not settings.secure_cookies
    assert settings.model_copy(update={"public_url": "https://palermo.example"}).secure_cookies


def test_an_open_redirect_is_refused(browser: Browser) -> None:
    r = browser.sign_in("it.officer", next="//evil.example/")
    assert r.headers["location"] == "/"


def test_wrong_password_is_refused_recorded_and_audited(
    browser: Browser, sync_engine: Engine
) -> None:
    r = browser.sign_in("it.officer", password="not the password at all")
    assert r.status_code == 401
    assert "The login or the password is wrong" in r.text
    assert 'value="it.officer"' in r.text  # the login is kept
    assert "palermo_session" not in browser.client.cookies
    assert count_rows(sync_engine, "login_throttles") == 2  # the login and the address
    leaf = _leaves(sync_engine, "auth:failed")[-1]
    assert leaf["channel"] == "web"
    assert leaf["participant"] == "it.central-authority"
    assert "it.officer" not in json.dumps(leaf)  # the login only as a keyed digest
    assert "not the password" not in json.dumps(leaf)
    assert len(leaf["login_digest"]) == 64
    assert len(leaf["address_digest"]) == 64
    assert "testclient" not in json.dumps(leaf)  # the address only as a keyed digest


def test_system_accounts_cannot_sign_in(browser: Browser, world: World) -> None:
    r = browser.sign_in("de.system", password=world.client_secrets["de.system"])
    assert r.status_code == 401


def test_missing_fields_say_so(browser: Browser) -> None:
    r = browser.sign_in("", password="")
    assert r.status_code == 400
    assert 'href="#login"' in r.text


@pytest.fixture
def strict(settings: Settings) -> Iterator[Browser]:
    tight = settings.model_copy(
        update={
            "auth_free_failures": 2,
            "auth_address_free_failures": 3,
            "auth_base_delay_seconds": 120.0,
            "auth_max_delay_seconds": 600.0,
        }
    )
    yield from (Browser(c) for c in _client(tight))


def test_failed_sign_ins_are_throttled_per_login(strict: Browser, sync_engine: Engine) -> None:
    for _ in range(2):
        assert strict.sign_in("it.officer", password="wrong wrong wrong").status_code == 401
    # Past the free failures even the right password is refused, without being checked.
    r = strict.sign_in("it.officer")
    assert r.status_code == 429
    assert 118 <= int(r.headers["retry-after"]) <= 120
    assert "Too many failed sign-ins" in r.text
    assert "Wait 2 minutes" in r.text
    assert "palermo_session" not in strict.client.cookies
    assert len(_leaves(sync_engine, "auth:failed")) == 2  # the unchecked refusal is not
    # Another login from the same address still may sign in (2 failures < 3).
    assert strict.sign_in("it.supervisor").status_code == 303


def test_failed_sign_ins_are_throttled_per_address(strict: Browser) -> None:
    for login in ("a.one", "b.two", "c.three"):
        assert strict.sign_in(login, password="wrong wrong wrong").status_code == 401
    assert strict.sign_in("it.officer").status_code == 429


def test_the_throttle_delay_passes(strict: Browser, sync_engine: Engine) -> None:
    for _ in range(2):
        strict.sign_in("it.officer", password="wrong wrong wrong")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with sync_engine.begin() as conn:
        conn.execute(text("UPDATE login_throttles SET last_failure_at = :at"), {"at": old})
    assert strict.sign_in("it.officer").status_code == 303
    # A success clears the login's failures, not the address's.
    assert count_rows(sync_engine, "login_throttles") == 1


# --- sessions ------------------------------------------------------------------------------


def test_sign_out_ends_the_session(browser: Browser, sync_engine: Engine) -> None:
    browser.sign_in("it.officer")
    r = browser.submit("/", "/sign-out")
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?signed_out=1"
    assert count_rows(sync_engine, "web_sessions") == 0
    assert browser.get("/").status_code == 303
    assert "You have signed out" in browser.get("/sign-in?signed_out=1").text


def test_a_stolen_cookie_is_useless_after_sign_out(browser: Browser) -> None:
    browser.sign_in("it.officer")
    token = browser.client.cookies["palermo_session"]
    browser.submit("/", "/sign-out")
    browser.client.cookies.set("palermo_session", token)
    r = browser.get("/")
    assert r.status_code == 303
    assert r.headers["location"].endswith("&expired=1")


@pytest.mark.parametrize(
    ("column", "age"),
    [("last_seen_at", dt.timedelta(seconds=1801)), ("expires_at", dt.timedelta(seconds=1))],
)
def test_sessions_end_when_idle_or_at_their_lifetime(
    browser: Browser, sync_engine: Engine, column: str, age: dt.timedelta
) -> None:
    browser.sign_in("it.officer")
    assert browser.get("/").status_code == 200
    with sync_engine.begin() as conn:
        conn.execute(
            text(f"UPDATE web_sessions SET {column} = :t"),
            {"t": dt.datetime.now(dt.UTC) - age},
        )
    r = browser.get("/inbox")
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?next=/inbox&expired=1"
    assert count_rows(sync_engine, "web_sessions") == 0
    assert "Your session has ended" in browser.get(r.headers["location"]).text


def test_the_lifetime_is_set_from_settings(browser: Browser, sync_engine: Engine) -> None:
    browser.sign_in("it.officer")
    with sync_engine.connect() as conn:
        created, expires = conn.execute(
            text("SELECT created_at, expires_at FROM web_sessions")
        ).one()
    as_dt = [
        v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v)
        for v in (created, expires)
    ]
    assert (as_dt[1] - as_dt[0]) == dt.timedelta(hours=12)


def test_a_disabled_account_loses_its_session(browser: Browser, api: Api, world: World) -> None:
    browser.sign_in("it.officer")
    disabled = api.post(f"/v1/accounts/{world.account_ids['it.officer']}/disable", as_="it.admin")
    assert disabled.status_code == 200
    assert browser.get("/").status_code == 303


# --- CSRF ----------------------------------------------------------------------------------


def test_forms_without_the_sessions_token_are_refused(
    browser: Browser, api: Api, settings: Settings, sync_engine: Engine
) -> None:
    browser.sign_in("it.officer")
    for data in ({}, {"csrf_token": "forged"}):
        r = browser.client.post("/sign-out", data=data, follow_redirects=False)
        assert r.status_code == 403
        assert "This form has expired" in r.text
        assert r.headers["content-type"].startswith("text/html")
    assert count_rows(sync_engine, "web_sessions") == 1
    # Another person's token does not do either.
    other = next(c for c in _client(settings))
    other_browser = Browser(other)
    other_browser.sign_in("it.supervisor")
    foreign = csrf_of(other_browser.client.get("/").text)
    r = browser.client.post("/sign-out", data={"csrf_token": foreign}, follow_redirects=False)
    assert r.status_code == 403
    assert count_rows(sync_engine, "web_sessions") == 2


def test_sign_in_needs_the_pre_session_token(api: Api) -> None:
    from tests.conftest import PASSWORD

    r = api.client.post(
        "/sign-in", data={"login": "it.officer", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    assert "palermo_session" not in api.client.cookies


# --- headers and errors ----------------------------------------------------------------------


def test_every_web_response_carries_the_security_headers(browser: Browser, api: Api) -> None:
    browser.sign_in("it.officer")
    for path in ("/sign-in", "/", "/inbox", "/no-such-page", f"/messages/{MID}"):
        r = browser.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    css = browser.get("/static/palermo.css")
    assert css.status_code == 200
    assert css.headers["x-content-type-options"] == "nosniff"
    # /v1 keeps its problem+json and gets none of the page headers.
    v1 = api.client.get("/v1/no-such-thing")
    assert v1.headers["content-type"] == "application/problem+json"
    assert "content-security-policy" not in v1.headers


def test_templates_carry_no_inline_script_or_style(browser: Browser) -> None:
    browser.sign_in("it.officer")
    for path in ("/sign-in", "/", "/inbox", "/sent", "/preferences"):
        html = browser.get(path).text
        scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S)
        assert scripts == [""] * len(scripts)  # no inline code
        assert all('src="/static/' in tag for tag in re.findall(r"<script[^>]*>", html))
        assert "style=" not in html
        assert "<style" not in html


def test_errors_on_pages_are_html(browser: Browser) -> None:
    missing = browser.get("/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    browser.sign_in("it.officer")
    r = browser.get(f"/messages/{MID}")
    assert r.status_code == 404
    assert "Page not found" in r.text
    bad = browser.get("/inbox?cursor=minus")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")


# --- languages and time zones --------------------------------------------------------------


def test_language_from_accept_language(api: Api) -> None:
    r = api.client.get("/sign-in", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in r.text
    assert "Se connecter" in r.text
    assert r.headers["content-language"] == "fr"
    r = api.client.get("/sign-in", headers={"Accept-Language": "es"})
    assert "Iniciar sesión" in r.text


def test_language_switch(browser: Browser) -> None:
    r = browser.submit("/sign-in", "/language", {"language": "es", "next": "/sign-in"})
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in"
    page = browser.get("/sign-in", headers={"Accept-Language": "fr"})
    assert '<html lang="es">' in page.text
    browser.sign_in("it.officer")
    r = browser.submit("/", "/language", {"language": "fr", "next": "/"})
    assert "Mon travail" in browser.get("/").text


def test_time_zone_preference(browser: Browser) -> None:
    browser.sign_in("it.officer")
    r = browser.submit("/preferences", "/preferences", {"timezone": "Mars/Olympus"})
    assert r.status_code == 422
    assert 'href="#timezone"' in r.text
    r = browser.submit("/preferences", "/preferences", {"timezone": "Asia/Tokyo"})
    assert r.status_code == 303
    assert "Times are shown in Asia/Tokyo" in browser.get("/").text


# --- the role matrix -------------------------------------------------------------------------


def test_matrix_covers_every_web_route() -> None:
    routes = {
        (method, route.path)
        for route in web_router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    covered = {(m, _template(p)) for m, p, _ in WEB_MATRIX} | PUBLIC
    assert routes == covered


def _template(path: str) -> str:
    for sample, placeholder in PLACEHOLDERS.items():
        path = path.replace(sample, placeholder)
    return path


@pytest.mark.parametrize(
    ("method", "path", "allowed"), WEB_MATRIX, ids=[f"{m} {p}" for m, p, _ in WEB_MATRIX]
)
def test_anonymous_is_sent_to_sign_in(api: Api, method: str, path: str, allowed: set[str]) -> None:
    r = api.client.request(method, path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/sign-in?next=")


@pytest.mark.parametrize("login", PEOPLE)
def test_who_may_open_each_page(settings: Settings, login: str) -> None:
    for client in _client(settings):
        browser = Browser(client)
        assert browser.sign_in(login).status_code == 303
        token = csrf_of(client.get("/").text)
        for method, path, allowed in WEB_MATRIX:
            if path == "/sign-out":
                continue  # checked last: it ends the session
            r = client.request(
                method,
                path,
                data={"csrf_token": token} if method == "POST" else None,
                follow_redirects=False,
            )
            if login in allowed:
                assert r.status_code not in (401, 403), (login, method, path, r.status_code)
                assert not r.headers.get("location", "").startswith("/sign-in"), (login, path)
            else:
                assert r.status_code == 403, (login, method, path, r.status_code)
                assert "You cannot open this page" in r.text
        r = client.post("/sign-out", data={"csrf_token": token}, follow_redirects=False)
        assert r.headers["location"] == "/sign-in?signed_out=1"


# --- a message, read and acknowledged ------------------------------------------------------


def test_read_a_message_with_a_justification_and_acknowledge_it(
    browser: Browser, api: Api, world: World, settings: Settings, sync_engine: Engine
) -> None:
    sent = api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"]))
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    relay(settings)
    browser.sign_in("it.officer")
    home = browser.get("/")
    assert f"/messages/{message_id}" in home.text
    assert "Waiting for your acknowledgement" in home.text
    assert f"/messages/{message_id}" in browser.get("/inbox").text
    page = browser.get(f"/messages/{message_id}")
    assert page.status_code == 200
    assert "Use restrictions" in page.text
    assert "H0" in page.text
    assert "investigation RG 1234/2026" in page.text

    # Without a good justification nothing is read, and what was typed is kept.
    short = browser.submit(
        f"/messages/{message_id}", f"/messages/{message_id}/content", {"justification": "why"}
    )
    assert short.status_code == 422
    assert 'href="#justification"' in short.text
    assert ">why</textarea>" in short.text
    assert _leaves(sync_engine, "content:consulted") == []

    why = "checking the vessel arrival for RG 1234/2026"
    read = browser.submit(
        f"/messages/{message_id}", f"/messages/{message_id}/content", {"justification": why}
    )
    assert read.status_code == 200, read.text
    assert "MARIA LUISA" in read.text
    assert read.headers["cache-control"] == "no-store"
    consulted = _leaves(sync_engine, "content:consulted")
    assert [kept_text(sync_engine, leaf, "justification") for leaf in consulted] == [why]

    ack = browser.submit(f"/messages/{message_id}", f"/messages/{message_id}/receipt")
    assert ack.status_code == 303
    after = browser.get(ack.headers["location"])
    assert "Receipt acknowledged" in after.text
    assert "Acknowledge receipt</button>" not in after.text
    status = api.get(f"/v1/messages/{message_id}", as_="it.officer").json()["status"]
    assert status == "receipted"
    assert f"/messages/{message_id}" not in browser.get("/").text.split("Recently sent")[0]


def test_inbox_and_sent_page_with_cursors(api: Api, world: World, settings: Settings) -> None:
    ids = []
    for _ in range(3):
        sent = api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"]))
        ids.append(sent.json()["id"])
    relay(settings)
    small = settings.model_copy(update={"inbox_page_size": 2})
    for client in _client(small):
        browser = Browser(client)
        browser.sign_in("it.officer")
        first = browser.get("/inbox").text
        assert [i in first for i in ids] == [True, True, False]
        link = re.search(r'href="(/inbox\?cursor=\d+)" rel="next"', first)
        assert link
        second = browser.get(link.group(1)).text
        assert [i in second for i in ids] == [False, False, True]
        assert 'rel="next"' not in second
        assert 'href="/inbox">First page' in second
        # Two acknowledged leave one waiting on the home page.
        for message_id in ids[:2]:
            browser.submit(f"/messages/{message_id}", f"/messages/{message_id}/receipt")
        home = browser.get("/").text
        assert [i in home for i in ids] == [False, False, True]


# --- password change -------------------------------------------------------------------------


def test_a_person_changes_their_password_on_the_page(browser: Browser, sync_engine: Engine) -> None:
    browser.sign_in("it.officer")
    assert 'href="/preferences/password"' in browser.get("/preferences").text
    new = "a brand new passphrase"
    r = browser.submit(
        "/preferences/password",
        "/preferences/password",
        {"current_password": "not the password at all", "new_password": new},
    )
    assert r.status_code == 401
    assert 'href="#current_password"' in r.text
    r = browser.submit(
        "/preferences/password",
        "/preferences/password",
        {"current_password": "correct horse battery staple", "new_password": "short"},
    )
    assert r.status_code == 422
    assert 'href="#new_password"' in r.text
    r = browser.submit(
        "/preferences/password",
        "/preferences/password",
        {"current_password": "correct horse battery staple", "new_password": new},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?password_changed=1"
    assert count_rows(sync_engine, "audit_events", "kind = 'account:password-changed'") == 1
    assert count_rows(sync_engine, "web_sessions") == 0 or browser.get("/").status_code == 303
    assert browser.sign_in("it.officer").status_code == 401  # the old password
    assert browser.sign_in("it.officer", password=new).status_code == 303


def test_sign_ins_behind_a_trusted_proxy_count_the_forwarded_client(
    settings: Settings,
) -> None:
    tight = settings.model_copy(
        update={
            "auth_address_free_failures": 3,
            "auth_base_delay_seconds": 120.0,
            "trusted_proxies": "10.0.0.0/8",
        }
    )
    with TestClient(create_app(tight), client=("10.0.0.5", 40_000)) as client:
        browser = Browser(client)
        client.headers["X-Forwarded-For"] = "198.51.100.1"
        for login in ("a.one", "b.two", "c.three"):
            assert browser.sign_in(login, password="wrong wrong wrong").status_code == 401
        assert browser.sign_in("it.officer").status_code == 429
        client.headers["X-Forwarded-For"] = "198.51.100.2"
        assert browser.sign_in("it.officer").status_code == 303
