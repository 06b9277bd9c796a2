"""Handling texts and restrictions are shown in a message's metadata (issue 14 item 2): P12
(SIENA handling codes: the H3 restriction text travels with the content and is shown to every
reader, the ``handling_text`` obligation) and P9 (UNTOC art. 18(26): conditions bind every
later access and forward), in GET /v1/messages/{id} and the inbox list, without reading the
content."""

from __future__ import annotations

from typing import Any

from broker.client import sign
from tests.conftest import Api
from tests.integration.messaging_helpers import payload, relay

H3 = {"code": "H3", "restriction": "do not contact the subject"}
DECLARED = ["only for proceedings RG 1234/2026"]


def restricted(api: Api) -> str:
    key = api.world.keys["de.bka"]
    env = sign(key, payload(key, handling=H3, restrictions=DECLARED))
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text
    relay(api.settings)
    mid: str = r.json()["id"]
    return mid


def assert_shown(view: dict[str, Any]) -> None:
    assert view["handling_code"] == "H3"
    assert view["handling_restriction"] == H3["restriction"]
    assert view["handling_texts"] == [H3["restriction"]]
    assert set(view["restrictions"]) == {*DECLARED, H3["restriction"]}


def test_the_recipient_sees_them_in_the_message_and_the_inbox(api: Api) -> None:
    mid = restricted(api)
    assert_shown(api.get(f"/v1/messages/{mid}", as_="it.officer").json())
    items = api.get("/v1/inbox", as_="it.officer").json()["items"]
    (entry,) = [i["message"] for i in items if i["message"]["id"] == mid]
    assert_shown(entry)
    # And so does the sender, in its sent list.
    sent = api.get("/v1/messages", as_="de.system").json()["items"]
    (mine,) = [m for m in sent if m["id"] == mid]
    assert_shown(mine)


def test_a_forward_shows_everything_that_binds_the_material(api: Api) -> None:
    mid = restricted(api)
    r = api.post(
        f"/v1/messages/{mid}/forward",
        as_="it.officer",
        json={"draft": {"recipient": "nl.fiu", "restrictions": ["no onward use"]}},
    )
    assert r.status_code == 202, r.text
    relay(api.settings)
    view = api.get(f"/v1/messages/{r.json()['id']}", as_="nl.officer").json()
    assert view["handling_restriction"] == H3["restriction"]
    assert H3["restriction"] in view["handling_texts"]
    assert set(view["restrictions"]) == {*DECLARED, H3["restriction"], "no onward use"}


def test_a_plain_message_shows_none(api: Api) -> None:
    key = api.world.keys["de.bka"]
    r = api.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
    assert r.status_code == 202, r.text
    relay(api.settings)
    view = api.get(f"/v1/messages/{r.json()['id']}", as_="it.officer").json()
    assert view["handling_restriction"] is None
    assert view["handling_texts"] == []
    assert view["restrictions"] == []
