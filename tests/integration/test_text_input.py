"""Text that cannot be stored or that misleads a reader is refused with a 422 naming the
field: lone surrogates anywhere in a JSON body (they cannot be encoded in UTF-8), and bidi and
other format characters (Unicode category Cf, e.g. U+202E) in names (broker/core/text.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows

SURROGATE = "\\ud800"  # as JSON spells it: the body itself is valid UTF-8


def post_raw(api: Api, path: str, body: str, *, method: str = "POST") -> object:
    return api.request(
        method,
        path,
        as_="it.admin",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )


def assert_field(r: object, field: str, why: str = "U+D800") -> None:
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    problem = r.json()  # type: ignore[attr-defined]
    assert problem["type"] == "urn:palermo:problem:schema-violation"
    assert field in problem["detail"], problem
    assert why in problem["detail"], problem


def test_a_lone_surrogate_in_a_display_name_is_a_422(api: Api, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "participants")
    body = '{"id": "es.fiu", "kind": "fiu", "display_name": "SEP@BLAC"}'.replace("@", SURROGATE)
    assert_field(post_raw(api, "/v1/participants", body), "display_name")
    assert count_rows(sync_engine, "participants") == before


def test_a_lone_surrogate_in_a_password_is_a_422(api: Api, sync_engine: Engine) -> None:
    before = count_rows(sync_engine, "accounts")
    body = (
        '{"kind": "person", "login": "es.officer", "display_name": "An officer", '
        '"roles": ["officer"], "password": "correct horse @ battery staple"}'
    ).replace("@", SURROGATE)
    assert_field(post_raw(api, "/v1/participants/de.bka/accounts", body), "password")
    assert count_rows(sync_engine, "accounts") == before


def test_a_lone_surrogate_in_a_webhook_url_is_a_422(api: Api) -> None:
    body = '{"adapter": "webhook", "config": {"url": "https://agency.example/@"}}'.replace(
        "@", SURROGATE
    )
    r = post_raw(api, "/v1/participants/de.bka/adapter", body, method="PUT")
    assert_field(r, "config.url")
    assert api.get("/v1/participants/de.bka/adapter", as_="it.admin").json()["adapter"] == "inbox"


def test_a_lone_surrogate_in_a_password_grant_is_refused(api: Api) -> None:
    r = api.client.post(
        "/v1/auth/token",
        content=b"grant_type=password&username=it.officer&password=%ED%A0%80",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code in (400, 401), r.text


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u2066", "\ufeff", "\u061c"])
def test_format_characters_in_a_display_name_are_a_422(
    api: Api, sync_engine: Engine, char: str
) -> None:
    body = {"id": "es.fiu", "kind": "fiu", "display_name": f"SEPBLAC{char}exe.pdf"}
    r = api.post("/v1/participants", as_="it.admin", json=body)
    assert_field(r, "display_name", f"U+{ord(char):04X}")
    assert count_rows(sync_engine, "participants", "id = 'es.fiu'") == 0


def test_format_characters_in_an_account_name_are_a_422(api: Api) -> None:
    body = {
        "kind": "person",
        "login": "es.officer",
        "display_name": "Eve\u202eevE",
        "roles": ["officer"],
        "password": "correct horse battery staple",
    }
    r = api.post("/v1/participants/de.bka/accounts", as_="it.admin", json=body)
    assert_field(r, "display_name", "U+202E")
