"""Tokens and who may call what: a matrix over every endpoint and every role."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from jose import jwt

from tests.conftest import PASSWORD, Api

ROLES = ["it.officer", "it.supervisor", "it.admin", "oversight", "de.system"]
HANDLERS = {"it.officer", "it.supervisor", "de.system"}
EVERYONE = set(ROLES)
ADMIN = {"it.admin"}
PEOPLE = EVERYONE - {"de.system"}
MID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10"
CID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a11"
FID = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9aff"
CASE = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a12"
FILE = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a13"
MATCH = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a14"

# (method, path, roles that may call it); a 404/409/422 behind the gate is fine.
MATRIX = [
    ("GET", "/v1/auth/whoami", EVERYONE),
    ("GET", "/v1/participants", EVERYONE),
    ("GET", "/v1/participants/de.bka", EVERYONE),
    ("POST", "/v1/participants", ADMIN),
    ("PATCH", "/v1/participants/de.bka", ADMIN),
    ("POST", "/v1/participants/de.bka/keys", ADMIN),
    ("POST", "/v1/participants/de.bka/keys/abc/revoke", ADMIN),
    ("POST", "/v1/participants/de.bka/keys/rotate", ADMIN),
    ("GET", "/v1/participants/de.bka/accounts", ADMIN),
    ("POST", "/v1/participants/de.bka/accounts", ADMIN),
    ("POST", "/v1/accounts/nobody/disable", ADMIN),
    ("POST", "/v1/accounts/nobody/secret-reset", ADMIN),
    ("PUT", "/v1/accounts/nobody/roles", ADMIN),
    ("PUT", "/v1/accounts/me/password", PEOPLE),
    ("POST", "/v1/messages", HANDLERS),
    ("GET", "/v1/messages", HANDLERS),
    ("GET", "/v1/messages/export", HANDLERS),
    ("GET", f"/v1/messages/{MID}", HANDLERS),
    ("GET", f"/v1/messages/{MID}/content", HANDLERS),
    ("POST", f"/v1/messages/{MID}/receipt", HANDLERS),
    ("POST", f"/v1/messages/{MID}/retention", {"it.supervisor"}),
    ("GET", "/v1/inbox", HANDLERS),
    ("GET", "/v1/approvals", {"it.supervisor"}),
    ("POST", f"/v1/approvals/{MID}/approve", {"it.supervisor"}),
    ("POST", f"/v1/approvals/{MID}/reject", {"it.supervisor"}),
    ("GET", "/v1/follow-ups", HANDLERS),
    ("POST", f"/v1/follow-ups/{FID}/done", HANDLERS),
    ("GET", "/v1/audit/checkpoint", HANDLERS | {"oversight"}),
    ("GET", "/v1/audit/entries", HANDLERS | {"oversight"}),
    ("GET", "/v1/audit/proofs/inclusion", HANDLERS | {"oversight"}),
    ("GET", "/v1/audit/proofs/consistency", HANDLERS | {"oversight"}),
    ("GET", "/v1/audit/export", {"oversight"}),
    ("POST", f"/v1/messages/{MID}/forward", HANDLERS),
    ("POST", f"/v1/messages/{MID}/consent-requests", HANDLERS),
    ("GET", "/v1/consents", HANDLERS),
    ("GET", f"/v1/consents/{CID}", HANDLERS),
    ("POST", f"/v1/consents/{CID}/grant", HANDLERS),
    ("POST", f"/v1/consents/{CID}/refuse", HANDLERS),
    ("GET", "/v1/policy", EVERYONE),
    ("POST", "/v1/policy/explain", ADMIN),
    ("GET", "/v1/delivery/dead-letters", ADMIN),
    ("POST", f"/v1/delivery/dead-letters/{MID}/requeue", ADMIN),
    ("GET", "/v1/participants/de.bka/adapter", ADMIN),
    ("PUT", "/v1/participants/de.bka/adapter", ADMIN),
    ("POST", "/v1/federation/envelopes", set()),
    ("POST", "/v1/federation/batch", set()),
    ("GET", "/v1/federation/directory", ADMIN | {"oversight"}),
    ("GET", "/v1/federation/peers", ADMIN | {"oversight"}),
    ("PUT", "/v1/federation/peers/de.palermo", ADMIN),
    ("POST", "/v1/federation/directory/sync", ADMIN),
    ("GET", "/v1/workflows", EVERYONE),
    ("GET", "/v1/workflows/mla.request", EVERYONE),
    ("POST", "/v1/cases", HANDLERS),
    ("GET", "/v1/cases", HANDLERS),
    ("GET", f"/v1/cases/{CASE}", HANDLERS),
    ("GET", f"/v1/cases/{CASE}/diagram", HANDLERS),
    ("GET", f"/v1/cases/{CASE}/request", HANDLERS),
    ("POST", f"/v1/cases/{CASE}/events", HANDLERS),
    ("POST", f"/v1/cases/{CASE}/retention", {"it.supervisor"}),
    ("POST", f"/v1/cases/{CASE}/events/draft", HANDLERS),
    ("POST", f"/v1/cases/{CASE}/evidence", HANDLERS),
    ("GET", f"/v1/cases/{CASE}/evidence", HANDLERS),
    ("GET", f"/v1/cases/{CASE}/evidence/{FILE}", HANDLERS),
    ("GET", f"/v1/cases/{CASE}/evidence/{FILE}/sealed", HANDLERS),
    ("POST", "/v1/fiu/matches", HANDLERS),
    ("GET", "/v1/fiu/matches", HANDLERS),
    ("GET", f"/v1/fiu/matches/{MATCH}", HANDLERS),
    ("POST", f"/v1/fiu/matches/{MATCH}/answer", HANDLERS),
    ("GET", "/v1/oversight/statistics", {"oversight"}),
]
PUBLIC = {("POST", "/v1/auth/token"), ("GET", "/v1/node")}


def test_matrix_covers_every_v1_route(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1")
        for method in operations
    }
    covered = {(m, _template(p)) for m, p, _ in MATRIX} | PUBLIC
    assert routes == covered


def _template(path: str) -> str:
    parts = path.split("/")
    names = {
        "de.bka": "{participant_id}",
        MID: "{message_id}",
        CID: "{consent_id}",
        FID: "{follow_up_id}",
        "abc": "{kid}",
        "nobody": "{account_id}",
        CASE: "{case_id}",
        FILE: "{file_id}",
        MATCH: "{match_id}",
        "mla.request": "{name}",
        "de.palermo": "{node_id}",
    }
    out = [names.get(p, p) for p in parts]
    return "/".join(out)


@pytest.mark.parametrize(
    ("method", "path", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX]
)
def test_who_may_call(api: Api, method: str, path: str, allowed: set[str]) -> None:
    anonymous = api.request(method, path, json={})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"] == "application/problem+json"
    for login in ROLES:
        r = api.request(method, path, as_=login, json={})
        if login in allowed:
            assert r.status_code not in (401, 403), (login, r.text)
        else:
            assert r.status_code == 403, (login, r.status_code, r.text)
            assert r.json()["type"] == "urn:palermo:problem:forbidden"


def test_password_grant_issues_a_working_token(api: Api) -> None:
    r = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "it.officer", "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["participant_id"] == "it.central-authority"
    me = api.client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["roles"] == ["officer"]


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "it.officer", "password": "wrong password!!"},
        {"grant_type": "password", "username": "nobody", "password": PASSWORD},
        {"grant_type": "password", "username": "de.system", "password": PASSWORD},
        {"grant_type": "client_credentials", "client_id": "it.officer", "client_secret": PASSWORD},
    ],
)
def test_wrong_credentials_are_refused_alike(api: Api, form: dict[str, str]) -> None:
    r = api.client.post("/v1/auth/token", data=form)
    assert r.status_code == 401
    assert r.json()["type"] == "urn:palermo:problem:invalid-grant"


def test_client_credentials_in_form_and_basic(api: Api) -> None:
    secret = api.world.client_secrets["de.system"]
    r = api.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "de.system",
            "client_secret": secret,
        },
    )
    assert r.status_code == 200, r.text
    basic = base64.b64encode(f"de.system:{secret}".encode()).decode()
    r = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["system"]


def test_unsupported_grant(api: Api) -> None:
    r = api.client.post("/v1/auth/token", data={"grant_type": "implicit"})
    assert r.status_code == 422
    assert r.json()["error"] == "unsupported_grant_type"


def _claims(api: Api, **over: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": api.settings.resolved_issuer,
        "aud": api.settings.token_audience,
        "sub": api.world.account_ids["it.admin"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        "pid": "it.central-authority",
        "roles": ["admin"],
        "kind": "person",
    }
    claims.update(over)
    return claims


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "case",
    ["alg-none", "wrong-key", "wrong-audience", "wrong-issuer", "expired", "hs512", "garbage"],
)
def test_forged_or_stale_tokens_are_refused(api: Api, case: str) -> None:
    secret = api.settings.token_secret_bytes.decode("latin-1")
    tokens: dict[str, Callable[[], str]] = {
        "alg-none": lambda: _unsigned(_claims(api)),
        "wrong-key": lambda: jwt.encode(_claims(api), "x" * 64, algorithm="HS256"),
        "wrong-audience": lambda: jwt.encode(_claims(api, aud="other"), secret, algorithm="HS256"),
        "wrong-issuer": lambda: jwt.encode(
            _claims(api, iss="https://evil"), secret, algorithm="HS256"
        ),
        "expired": lambda: jwt.encode(
            _claims(api, exp=int(time.time()) - 60), secret, algorithm="HS256"
        ),
        "hs512": lambda: jwt.encode(_claims(api), secret, algorithm="HS512"),
        "garbage": lambda: "not-a-token",
    }
    token = tokens[case]()
    r = api.client.get("/v1/participants", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.json()["type"] == "urn:palermo:problem:unauthenticated"


def test_a_disabled_account_is_refused_at_once(api: Api) -> None:
    assert api.get("/v1/inbox", as_="it.officer").status_code == 200
    account_id = api.world.account_ids["it.officer"]
    r = api.post(f"/v1/accounts/{account_id}/disable", as_="it.admin")
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert api.get("/v1/inbox", as_="it.officer").status_code == 401


def test_an_app_without_an_account_lookup_lets_nobody_in(api: Api) -> None:
    assert api.get("/v1/inbox", as_="it.officer").status_code == 200
    state = api.client.app.state  # type: ignore[attr-defined]
    lookup = state.callers
    del state.callers
    try:
        r = api.get("/v1/inbox", as_="it.officer")
    finally:
        state.callers = lookup
    assert r.status_code == 401
    assert r.json()["type"] == "urn:palermo:problem:unauthenticated"


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    api.client.get("/v1/inbox")
    metrics = api.client.get("/metrics").text
    assert "palermo_http_request_seconds" in metrics
    assert 'palermo_problems_total{type="urn:palermo:problem:unauthenticated"}' in metrics


def test_every_response_carries_a_request_id(api: Api) -> None:
    r = api.client.get("/v1/node", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert len(api.client.get("/v1/node").headers["x-request-id"]) == 32


def test_unknown_route_and_method_are_problems(api: Api) -> None:
    r = api.client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = api.client.delete("/v1/inbox")
    assert r.status_code == 401  # credentials come before routing for methods with a body
    r = api.request("DELETE", "/v1/inbox", as_="us.officer")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert r.json()["type"] == "urn:palermo:problem:method-not-allowed"
