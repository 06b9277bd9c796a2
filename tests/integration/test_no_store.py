"""Answers that carry a credential or content are never cached (RFC 6749 section 5.1)."""

from __future__ import annotations

from tests.conftest import PASSWORD, Api
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_helpers import HANDLER, to_transmitted


def test_the_token_answer_is_no_store(api: Api) -> None:
    r = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "it.officer", "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"


def test_message_content_is_no_store_and_nosniff(api: Api) -> None:
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    relay(api.settings)
    r = api.get(
        f"/v1/messages/{r.json()['id']}/content",
        as_="it.officer",
        params={"justification": "assessing the vessel alert"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_case_request_is_no_store(api: Api) -> None:
    case = to_transmitted(api)
    r = api.get(
        f"/v1/cases/{case['id']}/request",
        as_=HANDLER,
        params={"justification": "assessing the request"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
