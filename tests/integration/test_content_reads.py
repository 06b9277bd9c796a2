"""Every read of content is logged, once (LED art. 25; issue "every read logged").

The OpenAPI document is walked: a route whose success answer can carry content (a property
named ``payload``, ``request`` or ``body`` anywhere in its schema, or a body that is not JSON)
must be one of the consultations below, each of which is exercised here and must write
exactly one ``content:consulted`` leaf; or one of the exemptions, each with the reason its
"content" is not a party's content. A new route that hands out content fails the walk until
it logs its reads and is added here."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from tests.conftest import Api
from tests.integration.audit_helpers import kept_text
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_helpers import (
    DRAFTER,
    call,
    fire,
    open_case,
    register_partner,
    upload,
)
from tests.integration.test_fiu import fiu_request

CONTENT_FIELDS = frozenset({"payload", "request", "body", "ciphertext"})
WHY = "checking the read is logged once"

# (method, path) -> why its answer is no party's content.
EXEMPT = {
    ("GET", "/v1/messages/{message_id}"): "metadata; its `receipt` is the signed receipt, whose "
    "payload names the message and its digest",
    ("POST", "/v1/messages/{message_id}/receipt"): "the same message read, with the receipt",
    ("POST", "/v1/messages/{message_id}/retention"): "the same message read, after a review",
    ("GET", "/v1/messages"): "the sent list: the same metadata per message",
    ("GET", "/v1/inbox"): "the inbox: the same metadata per message",
    ("POST", "/v1/federation/envelopes"): "a peer node's own envelope, countersigned back to it "
    "for the chain of custody",
    ("GET", "/v1/audit/export"): "the audit log's leaves: metadata and digests, never content",
    ("GET", "/v1/federation/directory"): "the node's signed directory: its participants' "
    "public keys and validity, no party's content",
    ("GET", "/v1/approvals"): "the held messages' metadata for the supervisor who decides, as "
    "in the sent list; opening one's content is the logged content read",
    ("POST", "/v1/approvals/{message_id}/approve"): "the same message metadata, after the decision",
    ("POST", "/v1/approvals/{message_id}/reject"): "the same message metadata, after the decision",
}


def _properties(schema: Any, components: dict[str, Any], seen: frozenset[str]) -> set[str]:
    found: set[str] = set()
    if not isinstance(schema, dict):
        return found
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return set() if name in seen else _properties(components[name], components, seen | {name})
    for name, sub in schema.get("properties", {}).items():
        found.add(name)
        found |= _properties(sub, components, seen)
    for key in ("items", "additionalProperties"):
        found |= _properties(schema.get(key), components, seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found |= _properties(sub, components, seen)
    return found


def content_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    components = document["components"]["schemas"]
    routes = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation.get("responses", {}).items():
                if not code.startswith("2"):
                    continue
                for media, content in answer.get("content", {}).items():
                    names = _properties(content.get("schema", {}), components, frozenset())
                    if media != "application/json" or names & CONTENT_FIELDS:
                        routes.add((method.upper(), path))
    return routes


def _leaves(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'content:consulted' ORDER BY id")
        ).all()
    return [orjson.loads(bytes(r[0]) if not isinstance(r[0], str) else r[0]) for r in rows]


def _message_content(api: Api) -> Any:
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert r.status_code == 202, r.text
    relay(api.settings)
    return api.get(
        f"/v1/messages/{r.json()['id']}/content",
        as_="it.officer",
        params={"justification": WHY},
    )


def _case_request(api: Api) -> Any:
    case = open_case(api)
    return call(
        api, "GET", f"/v1/cases/{case['id']}/request", DRAFTER, params={"justification": WHY}
    )


def _event_draft(api: Api) -> Any:
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})
    case = open_case(
        api, "nl.officer", workflow="fiu.request", counterpart="it.fiu", request=fiu_request()
    )
    return call(
        api,
        "POST",
        f"/v1/cases/{case['id']}/events/draft",
        "nl.officer",
        json={"event": "submit"},
        params={"justification": WHY},
    )


def _evidence(api: Api) -> Any:
    case = open_case(api)
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    file_id = upload(api, case["id"], DRAFTER, b"%PDF-1.7 bank statements")
    return call(
        api,
        "GET",
        f"/v1/cases/{case['id']}/evidence/{file_id}",
        DRAFTER,
        params={"justification": WHY},
    )


def _export(api: Api) -> Any:
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert r.status_code == 202, r.text
    return api.get("/v1/messages/export", as_="de.system", params={"justification": WHY})


def _sealed_evidence(api: Api) -> Any:
    case = open_case(api)
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    file_id = upload(api, case["id"], DRAFTER, b"%PDF-1.7 bank statements")
    return call(
        api,
        "GET",
        f"/v1/cases/{case['id']}/evidence/{file_id}/sealed",
        DRAFTER,
        params={"justification": WHY},
    )


CONSULTATIONS: dict[tuple[str, str], Callable[[Api], Any]] = {
    ("GET", "/v1/cases/{case_id}/evidence/{file_id}/sealed"): _sealed_evidence,
    ("GET", "/v1/messages/export"): _export,
    ("GET", "/v1/messages/{message_id}/content"): _message_content,
    ("GET", "/v1/cases/{case_id}/request"): _case_request,
    ("POST", "/v1/cases/{case_id}/events/draft"): _event_draft,
    ("GET", "/v1/cases/{case_id}/evidence/{file_id}"): _evidence,
}


def test_every_route_that_answers_content_is_a_logged_consultation_or_exempt(api: Api) -> None:
    found = content_routes(api.get("/openapi.json").json())
    assert found - set(EXEMPT) == set(CONSULTATIONS)


@pytest.mark.parametrize("route", sorted(CONSULTATIONS), ids=" ".join)
def test_each_consultation_writes_exactly_one_leaf(
    api: Api, sync_engine: Engine, route: tuple[str, str]
) -> None:
    before = len(_leaves(sync_engine))
    r = CONSULTATIONS[route](api)
    assert r.status_code == 200, r.text
    leaves = _leaves(sync_engine)[before:]
    assert len(leaves) == 1, leaves
    assert kept_text(sync_engine, leaves[0], "justification") == WHY
    assert leaves[0]["actor"]["account"]
    assert r.headers.get("cache-control") == "no-store"


def test_answers_to_submissions_seal_the_envelope(api: Api) -> None:
    """Sending, forwarding and firing answer the envelope's digest and signatures: the body
    they carry is read through a consultation, never from the answer."""
    env = envelope(api.world.keys["de.bka"])
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text
    seal = r.json()["envelope"]
    assert set(seal) == {"payload_type", "payload_sha256", "signatures"}
    assert seal["payload_sha256"] == hashlib.sha256(base64.b64decode(env["payload"])).hexdigest()
    case = open_case(api)
    fired = fire(api, case["id"], "submit_for_vetting", DRAFTER)
    assert set(fired["envelope"]) == {"payload_type", "payload_sha256", "signatures"}
    assert "Funds moved from Milan" not in orjson.dumps(fired).decode()  # the request's facts
