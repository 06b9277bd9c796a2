"""The participant registry and keys through the admin API: registration, validation,
rotation (an old key verifies while its grace lasts) and revocation (at once)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt

import pytest
from sqlalchemy import Engine

from broker.client import KeyFile
from broker.core import crypto
from broker.core.context import node_context
from broker.core.db import Database
from broker.participants import service as participants
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope


def test_register_participant_and_read_it(api: Api, sync_engine: Engine) -> None:
    body = {"id": "es.fiu", "kind": "fiu", "display_name": "SEPBLAC"}
    r = api.post("/v1/participants", as_="it.admin", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["jurisdiction"] == "ES"
    assert r.json()["status"] == "active"
    got = api.get("/v1/participants/es.fiu", as_="nl.officer").json()
    assert got["display_name"] == "SEPBLAC"
    assert count_rows(sync_engine, "audit_events", "kind = 'participant:registered'") >= 1
    again = api.post("/v1/participants", as_="it.admin", json=body)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:palermo:problem:conflict"


@pytest.mark.parametrize(
    "body",
    [
        {"id": "Spain.fiu", "kind": "fiu", "display_name": "x"},
        {"id": "es.fiu", "kind": "bank", "display_name": "x"},
        {"id": "es.fiu", "kind": "fiu", "display_name": ""},
        {"id": "es.fiu", "kind": "fiu", "display_name": "x", "adapter": "carrier-pigeon"},
    ],
)
def test_bad_participants_are_refused_and_nothing_stored(
    api: Api, sync_engine: Engine, body: dict[str, str]
) -> None:
    before = count_rows(sync_engine, "participants")
    r = api.post("/v1/participants", as_="it.admin", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert count_rows(sync_engine, "participants") == before


def test_unknown_participant_is_404(api: Api) -> None:
    r = api.get("/v1/participants/xx.none", as_="it.officer")
    assert r.status_code == 404
    assert r.json()["type"] == "urn:palermo:problem:not-found"


def test_register_public_keys_and_refuse_bad_ones(api: Api) -> None:
    _, public = crypto.generate_signing_key()
    b64 = base64.b64encode(public).decode()
    r = api.post(
        "/v1/participants/de.bka/keys",
        as_="it.admin",
        json={"purpose": "signing", "public_key": b64},
    )
    assert r.status_code == 201, r.text
    assert r.json()["kid"] == crypto.key_id(public)
    assert r.json()["custodial"] is False
    dup = api.post(
        "/v1/participants/de.bka/keys",
        as_="it.admin",
        json={"purpose": "signing", "public_key": b64},
    )
    assert dup.status_code == 409
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        r = api.post(
            "/v1/participants/de.bka/keys",
            as_="it.admin",
            json={"purpose": "signing", "public_key": bad},
        )
        assert r.status_code == 422, r.text
    low_order = bytes(32)  # the all-zero X25519 point
    r = api.post(
        "/v1/participants/de.bka/keys",
        as_="it.admin",
        json={"purpose": "encryption", "public_key": base64.b64encode(low_order).decode()},
    )
    assert r.status_code == 422
    assert "low-order" in r.json()["detail"]
    both = api.post(
        "/v1/participants/de.bka/keys",
        as_="it.admin",
        json={"purpose": "signing", "public_key": b64, "generate": True},
    )
    assert both.status_code == 422


def test_generated_custodial_key_never_leaves_the_node(api: Api) -> None:
    r = api.post(
        "/v1/participants/us.central-authority/keys",
        as_="it.admin",
        json={"purpose": "signing", "generate": True},
    )
    assert r.status_code == 201, r.text
    assert r.json()["custodial"] is True
    assert set(r.json()) == {
        "kid",
        "purpose",
        "algorithm",
        "public_key",
        "custodial",
        "not_before",
        "not_after",
        "revoked_at",
        "revocation_reason",
    }


def test_rotation_keeps_the_old_key_valid_for_its_grace_then_not(api: Api) -> None:
    old = api.world.keys["de.bka"]

    async def rotate(grace: dt.timedelta) -> KeyFile:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        async with db.session() as s:
            made = await participants.rotate_key(
                s,
                node=node_context(api.settings),
                participant_id="de.bka",
                purpose="signing",
                grace=grace,
                custodial=False,
                actor=None,
            )
            await s.commit()
        await db.dispose()
        assert made.private_key is not None
        return KeyFile("de.bka", made.key.kid, made.private_key)

    new = asyncio.run(rotate(dt.timedelta(days=7)))
    assert api.post("/v1/messages", as_="de.system", json=envelope(old)).status_code == 202
    assert api.post("/v1/messages", as_="de.system", json=envelope(new)).status_code == 202
    keys = {k["kid"]: k for k in api.get("/v1/participants/de.bka", as_="it.admin").json()["keys"]}
    assert keys[old.kid]["not_after"] is not None
    # A rotation with no grace ends the earlier self-held key at once.
    newest = asyncio.run(rotate(dt.timedelta(0)))
    r = api.post("/v1/messages", as_="de.system", json=envelope(new))
    assert r.status_code == 400
    assert r.json()["type"] == "urn:palermo:problem:expired-key"
    assert api.post("/v1/messages", as_="de.system", json=envelope(newest)).status_code == 202


def test_revoking_twice_is_a_conflict_and_unknown_key_404(api: Api) -> None:
    kid = api.world.keys["nl.fiu"].kid
    path = f"/v1/participants/nl.fiu/keys/{kid}/revoke"
    assert api.post(path, as_="it.admin", json={"reason": "compromised"}).status_code == 200
    again = api.post(path, as_="it.admin", json={"reason": "compromised"})
    assert again.status_code == 409
    assert again.json()["type"] == "urn:palermo:problem:invalid-state"
    wrong_owner = api.post(
        f"/v1/participants/de.bka/keys/{kid}/revoke", as_="it.admin", json={"reason": "whatever"}
    )
    assert wrong_owner.status_code == 404


def test_suspending_a_participant_stops_its_exchanges(api: Api) -> None:
    r = api.request(
        "PATCH", "/v1/participants/de.bka", as_="it.admin", json={"status": "suspended"}
    )
    assert r.status_code == 200, r.text
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert r.status_code == 403
    assert r.json()["type"] == "urn:palermo:problem:policy-denied"


def test_admin_creates_accounts_for_people_and_systems(api: Api) -> None:
    person = {
        "kind": "person",
        "login": "de.analyst",
        "display_name": "Analyst",
        "roles": ["officer"],
        "password": "a sufficiently long passphrase",
    }
    r = api.post("/v1/participants/de.bka/accounts", as_="it.admin", json=person)
    assert r.status_code == 201, r.text
    assert r.json()["client_secret"] is None
    token = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "de.analyst", "password": person["password"]},
    )
    assert token.status_code == 200
    system = {"kind": "system", "login": "de-sys-2", "display_name": "S", "roles": ["system"]}
    r = api.post("/v1/participants/de.bka/accounts", as_="it.admin", json=system)
    assert r.status_code == 201, r.text
    assert len(r.json()["client_secret"]) > 30
    listed = api.get("/v1/participants/de.bka/accounts", as_="it.admin").json()["items"]
    assert {"de.analyst", "de-sys-2", "de.system"} <= {a["login"] for a in listed}
    # A system may not hold a person's role, a short password is refused, logins are unique.
    for bad, status in (
        ({**system, "login": "de-sys-3", "roles": ["admin"]}, 422),
        ({**person, "login": "de.x", "password": "short"}, 422),
        ({**person, "password": None}, 422),
        (person, 409),
    ):
        r = api.post("/v1/participants/de.bka/accounts", as_="it.admin", json=bad)
        assert r.status_code == status, (bad, r.text)
