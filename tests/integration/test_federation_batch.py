"""Batched federation (issue 16 item 7): ``POST /v1/federation/batch`` takes many forwarded
envelopes in one request a peer node signed (RFC 9421) and answers each on its own, as
``/v1/federation/envelopes`` would; the delivery worker sends the due envelopes for one peer
node in one such request and records each envelope's own result."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from adapters import httpsig
from broker.app import create_app
from broker.core.crypto import Signer
from broker.delivery.pipeline import SPREAD_MIN
from broker.envelopes import dsse
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_delivery_helpers import deliver_once

BATCH = "/v1/federation/batch"
SINGLE = "/v1/federation/envelopes"


# --- the endpoint --------------------------------------------------------------------------


def _register_peer(api: Api, participant: str, url: str, key: Signer) -> None:
    r = api.request(
        "PUT",
        f"/v1/participants/{participant}/adapter",
        as_="it.admin",
        json={
            "adapter": "peer",
            "config": {"url": url, "node_key": base64.b64encode(key.public_key).decode()},
        },
    )
    assert r.status_code == 200, r.text


@pytest.fixture
def peer_key(api: Api) -> Signer:
    """A peer node's key, registered as the node hosting de.bka."""
    key = Signer(secrets.token_bytes(32))
    _register_peer(api, "de.bka", "https://palermo.de.example", key)
    return key


def _forwarded(api: Api, node_key: Signer, **over: Any) -> dict[str, Any]:
    signed = dsse.parse_envelope(envelope(api.world.keys["de.bka"], **over))
    return dsse.add_signature(signed, node_key).to_dict()


def _signed_post(
    client: TestClient, path: str, body: bytes, signer: Signer | None, **headers: str
) -> httpx.Response:
    url = "http://testserver" + path
    all_headers = {"Content-Type": "application/json", **headers}
    if signer is not None:
        all_headers.update(
            httpsig.sign(method="POST", url=url, headers=all_headers, body=body, signer=signer)
        )
    response: httpx.Response = client.post(path, content=body, headers=all_headers)
    return response


def _batch(envelopes: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"envelopes": envelopes})


def test_each_envelope_of_a_batch_is_answered_on_its_own(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    seen = _forwarded(api, peer_key)
    first = _signed_post(api.client, SINGLE, orjson.dumps(seen), peer_key)
    assert first.status_code == 202, first.text
    good = _forwarded(api, peer_key)
    forged = _forwarded(api, peer_key)
    forged["signatures"][0]["sig"] = base64.b64encode(b"\x00" * 64).decode()
    # nl.fiu is hosted here, not behind the peer: the sender is not the forwarder's.
    stranger = dsse.add_signature(
        dsse.parse_envelope(envelope(api.world.keys["nl.fiu"], recipient="it.central-authority")),
        peer_key,
    ).to_dict()
    also_good = _forwarded(api, peer_key)
    r = _signed_post(
        api.client, BATCH, _batch([good, seen, forged, stranger, also_good, good]), peer_key
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == [0, 1, 2, 3, 4, 5]
    assert [x["status"] for x in results] == [202, 200, 400, 403, 202, 200]
    # The replayed envelope gets its first answer, exactly as the single endpoint gives it.
    assert results[1]["accepted"] == first.json()
    # A repeat within the batch is a replay of its first occurrence.
    assert results[5]["accepted"] == results[0]["accepted"]
    assert results[2]["problem"]["type"] == "urn:palermo:problem:bad-signature"
    assert results[2]["problem"]["instance"] == "envelopes[2]"
    assert results[3]["problem"]["type"] == "urn:palermo:problem:sender-mismatch"
    assert "problem" not in results[0]
    assert "accepted" not in results[2]
    node_kid = api.get("/v1/node").json()["signing_key_id"]
    for index in (0, 4):
        sigs = results[index]["accepted"]["envelope"]["signatures"]
        assert [s["keyid"] for s in sigs] == [api.world.keys["de.bka"].kid, node_kid]
    # Stored: the one seen before and the two good ones, each once, each in the outbox.
    assert count_rows(sync_engine, "messages") == 3
    assert count_rows(sync_engine, "outbox") == 3
    with sync_engine.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM messages")).scalars())
    assert stored == {results[i]["accepted"]["id"] for i in (0, 1, 4)}
    assert count_rows(sync_engine, "audit_events", "kind = 'message:accepted'") == 3


def test_a_policy_refusal_in_a_batch_keeps_its_leaf_and_refuses_only_that_envelope(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    good = _forwarded(api, peer_key)
    # The recipient is suspended: policy refuses the exchange.
    refused = _forwarded(api, peer_key, recipient="fr.suspended")
    r = _signed_post(api.client, BATCH, _batch([refused, good]), peer_key)
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert (first["status"], first["problem"]["type"]) == (403, "urn:palermo:problem:policy-denied")
    assert first["problem"]["reasons"], first
    assert second["status"] == 202
    assert count_rows(sync_engine, "messages") == 1
    assert count_rows(sync_engine, "audit_events", "kind = 'message:refused'") == 1


@pytest.mark.parametrize("case", ["unsigned", "unknown-node", "tampered", "token"])
def test_a_batch_whose_request_signature_fails_is_refused_whole(
    api: Api, peer_key: Signer, sync_engine: Engine, case: str
) -> None:
    stranger = Signer(secrets.token_bytes(32))
    body = _batch([_forwarded(api, peer_key), _forwarded(api, peer_key)])
    if case == "unsigned":
        r = _signed_post(api.client, BATCH, body, None)
        expected = (401, "unauthenticated")
    elif case == "unknown-node":
        r = _signed_post(api.client, BATCH, body, stranger)
        expected = (401, "unauthenticated")
    elif case == "tampered":
        url = "http://testserver" + BATCH
        headers = {"Content-Type": "application/json"}
        headers.update(
            httpsig.sign(method="POST", url=url, headers=headers, body=body, signer=peer_key)
        )
        other = _batch([_forwarded(api, peer_key), _forwarded(api, peer_key)])
        r = api.client.post(BATCH, content=other, headers=headers)
        expected = (401, "unauthenticated")
    else:
        # A participant's (and an administrator's) access token is not a node's signature.
        for login in ("de.system", "it.admin"):
            r = _signed_post(
                api.client, BATCH, body, None, Authorization=f"Bearer {api.token(login)}"
            )
            assert r.status_code == 403, r.text
        expected = (403, "forbidden")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (r.status_code, r.json()["type"]) == (
        expected[0],
        f"urn:palermo:problem:{expected[1]}",
    ), r.text
    assert count_rows(sync_engine, "messages") == 0
    assert count_rows(sync_engine, "audit_events", "kind LIKE 'message:%'") == 0


def test_envelopes_countersigned_by_another_node_than_the_signer_are_refused(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    """A peer may forward only its own envelopes, even inside a request it signed."""
    other_node = Signer(secrets.token_bytes(32))
    _register_peer(api, "nl.fiu", "https://palermo.nl.example", other_node)
    theirs = dsse.add_signature(
        dsse.parse_envelope(envelope(api.world.keys["nl.fiu"], recipient="it.central-authority")),
        other_node,
    ).to_dict()
    # Nor does a node relay: nl.fiu is hosted by the other node, not here.
    relayed = _forwarded(api, peer_key, recipient="nl.fiu")
    unknown = _forwarded(api, peer_key, recipient="xx.nobody")
    r = _signed_post(
        api.client,
        BATCH,
        _batch([theirs, _forwarded(api, peer_key), relayed, unknown]),
        peer_key,
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [400, 202, 422, 422]
    assert "not hosted by this node" in results[2]["problem"]["detail"]
    assert results[3]["problem"]["type"] == "urn:palermo:problem:unknown-recipient"
    assert count_rows(sync_engine, "messages") == 1


def test_a_batch_of_good_envelopes_is_stored_whole(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    r = _signed_post(
        api.client, BATCH, _batch([_forwarded(api, peer_key) for _ in range(4)]), peer_key
    )
    assert r.status_code == 200, r.text
    ids = [x["accepted"]["id"] for x in r.json()["results"]]
    assert [x["status"] for x in r.json()["results"]] == [202] * 4
    assert count_rows(sync_engine, "messages") == 4
    assert relay(api.settings) == 4
    inbox = api.get("/v1/inbox", as_="it.officer").json()["items"]
    assert sorted(i["message"]["id"] for i in inbox) == sorted(ids)


def test_a_batch_over_the_limits_is_refused_with_a_problem(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    limit = api.settings.federation_batch_max_envelopes
    one = _forwarded(api, peer_key)
    r = _signed_post(api.client, BATCH, _batch([one] * (limit + 1)), peer_key)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert (problem["type"], problem["field"], problem["limit"]) == (
        "urn:palermo:problem:schema-violation",
        "envelopes",
        limit,
    )
    for bad in (b'{"envelopes": []}', b'{"envelope": {}}', b"[]", b"{not json"):
        r = _signed_post(api.client, BATCH, bad, peer_key)
        assert 400 <= r.status_code < 500, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert count_rows(sync_engine, "messages") == 0


def test_a_batch_body_over_the_byte_limit_is_refused_with_413(
    api: Api, sync_engine: Engine
) -> None:
    settings = api.settings.model_copy(
        update={"federation_batch_max_bytes": 4096, "request_max_bytes": 2048}
    )
    key = Signer(secrets.token_bytes(32))
    with TestClient(create_app(settings)) as client:
        body = _batch([_forwarded(api, key) for _ in range(8)])
        assert len(body) > 4096
        r = _signed_post(client, BATCH, body, key)
        assert r.status_code == 413, r.text
        assert r.json()["type"] == "urn:palermo:problem:payload-too-large"
        # The single endpoint keeps its own, smaller limit.
        r = _signed_post(client, SINGLE, b"x" * 3000, key)
        assert r.status_code == 413
    assert count_rows(sync_engine, "messages") == 0


def test_the_batch_endpoint_is_described_in_the_openapi_document(api: Api) -> None:
    op = api.get("/openapi.json").json()["paths"][BATCH]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/FederationBatch"}
    problem = {"$ref": "#/components/schemas/Problem"}
    for code in ("401", "403", "413", "422", "4XX"):
        assert op["responses"][code]["content"]["application/problem+json"]["schema"] == problem
    assert "200" in op["responses"]


# --- the sending side ----------------------------------------------------------------------


@dataclass
class PeerNodeStub:
    """Another node's federation endpoints, for the worker's side: checks this node's request
    signature, answers each envelope as it is told (``answers``: accept, a status), and
    countersigns what it accepts with its own node key."""

    sender_keys: dict[str, bytes]
    key: Signer = field(default_factory=lambda: Signer(secrets.token_bytes(32)))
    answers: list[int | str] = field(default_factory=list)  # per envelope: "accept" or a status
    batch_status: int = 200  # a status for the batch request itself
    slow_first: float = 0.0  # seconds the first batch request waits before its answer
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> first answer
    port: int = 0
    requests: list[tuple[str, int]] = field(default_factory=list)  # (path, envelopes)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accept(self, raw: Any) -> dict[str, Any]:
        env = dsse.parse_envelope(raw)
        payload = orjson.loads(env.payload)
        mine = dsse.add_signature(
            dsse.parse_envelope({**raw, "signatures": raw["signatures"][:1]}), self.key
        )
        now = dt.datetime.now(dt.UTC).isoformat()
        return {
            "id": payload["id"],
            "status": "accepted",
            "accepted_at": now,
            "envelope": mine.to_dict(),
        }

    def handle(self, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        httpsig.verify(
            method="POST",
            url=self.url + path,
            headers=headers,
            body=body,
            key_for=self.sender_keys.get,
        )
        if path == SINGLE:
            with self.lock:
                self.requests.append((path, 1))
            return 202, orjson.dumps(self.accept(orjson.loads(body)))
        envelopes = orjson.loads(body)["envelopes"]
        with self.lock:
            self.requests.append((path, len(envelopes)))
        if self.batch_status != 200:
            return self.batch_status, b'{"type": "urn:palermo:problem:not-found"}'
        results: list[dict[str, Any]] = []
        for index, raw in enumerate(envelopes):
            answer = self.answers[index] if index < len(self.answers) else "accept"
            if answer == "accept":
                accepted = self.accept(raw)
                with self.lock:  # the replay rule: the first answer again
                    seen = accepted["id"] in self.stored
                    accepted = self.stored.setdefault(accepted["id"], accepted)
                status = 200 if seen else 202
                results.append({"index": index, "status": status, "accepted": accepted})
            else:
                problem = {"type": "urn:palermo:problem:policy-denied", "status": answer}
                results.append({"index": index, "status": answer, "problem": problem})
        if self.slow_first and len(self.requests) == 1:
            time.sleep(self.slow_first)  # stored, but the answer comes too late
        return 200, orjson.dumps({"results": results})


@contextmanager
def peer_server(stub: PeerNodeStub) -> Iterator[PeerNodeStub]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                status, answer = stub.handle(self.path, list(self.headers.items()), body)
            except httpsig.SignatureError:
                status, answer = 401, b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _node_keys(api: Api) -> dict[str, bytes]:
    node = api.get("/v1/node").json()
    return {node["signing_key_id"]: base64.b64decode(node["signing_public_key"])}


def _send_to(api: Api, recipient: str, n: int) -> list[str]:
    key = api.world.keys["de.bka"]
    ids = []
    for _ in range(n):
        r = api.post("/v1/messages", as_="de.system", json=envelope(key, recipient=recipient))
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def _attempts(api: Api, message_id: str) -> list[tuple[str, str]]:
    status = api.get(f"/v1/messages/{message_id}", as_="de.system").json()
    return [(a["adapter"], a["outcome"]) for a in status["attempts"]]


def test_the_worker_sends_due_envelopes_for_one_peer_in_one_request(
    api: Api, sync_engine: Engine
) -> None:
    with peer_server(PeerNodeStub(_node_keys(api), answers=["accept", 403, 503, "accept"])) as stub:
        _register_peer(api, "nl.fiu", stub.url, stub.key)
        ids = _send_to(api, "nl.fiu", 4)
        report = deliver_once(api.settings)
        assert stub.requests == [(BATCH, 4)]
        assert (report.delivered, report.retry, report.dead_lettered) == (2, 1, 1)
        assert _attempts(api, ids[0]) == [("peer", "delivered")]
        assert _attempts(api, ids[3]) == [("peer", "delivered")]
        assert api.get(f"/v1/messages/{ids[1]}", as_="de.system").json()["status"] == (
            "dead_lettered"
        )
        with sync_engine.connect() as conn:
            waiting = conn.execute(
                text("SELECT message_id, attempts, dead_lettered_at FROM outbox")
            ).all()
        by_id = {m: (n, dead is not None) for m, n, dead in waiting}
        assert by_id == {ids[1]: (1, True), ids[2]: (1, False)}
        # The retried one goes again, alone: the single endpoint.
        with sync_engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET next_attempt_at = NULL"))
        report = deliver_once(api.settings)
        assert report.delivered == 1
        assert stub.requests[1:] == [(SINGLE, 1)]
        assert [o for _, o in _attempts(api, ids[2])] == ["failed", "delivered"]
    assert count_rows(sync_engine, "audit_events", "kind = 'message:delivered'") == 3


def test_the_worker_splits_batches_at_the_batch_size(api: Api, sync_engine: Engine) -> None:
    settings = api.settings.model_copy(update={"federation_batch_max_envelopes": 2})
    with peer_server(PeerNodeStub(_node_keys(api))) as stub:
        _register_peer(api, "nl.fiu", stub.url, stub.key)
        _send_to(api, "nl.fiu", 5)
        report = deliver_once(settings)
        assert report.delivered == 5
        assert sorted(stub.requests) == [(BATCH, 2), (BATCH, 2), (SINGLE, 1)]
    assert count_rows(sync_engine, "outbox") == 0


def test_a_peer_without_the_batch_endpoint_gets_the_envelopes_one_by_one(
    api: Api, sync_engine: Engine
) -> None:
    """An older node answers 404 to the batch path: each envelope goes to the single one."""
    with peer_server(PeerNodeStub(_node_keys(api), batch_status=404)) as stub:
        _register_peer(api, "nl.fiu", stub.url, stub.key)
        ids = _send_to(api, "nl.fiu", 3)
        report = deliver_once(api.settings)
        assert report.delivered == 3
        assert stub.requests[0] == (BATCH, 3)
        assert sorted(stub.requests[1:]) == [(SINGLE, 1)] * 3
        assert all(_attempts(api, m) == [("peer", "delivered")] for m in ids)
    assert count_rows(sync_engine, "outbox") == 0


def test_a_batch_refused_as_a_whole_is_retried_for_each_envelope(
    api: Api, sync_engine: Engine
) -> None:
    with peer_server(PeerNodeStub(_node_keys(api), batch_status=503)) as stub:
        _register_peer(api, "nl.fiu", stub.url, stub.key)
        _send_to(api, "nl.fiu", 3)
        report = deliver_once(api.settings)
        assert (report.delivered, report.retry) == (0, 3)
        assert stub.requests == [(BATCH, 3)]
    assert count_rows(sync_engine, "outbox", "attempts = 1 AND dead_lettered_at IS NULL") == 3
    assert count_rows(sync_engine, "delivery_attempts") == 3


def test_a_batch_sent_again_after_a_lost_answer_stores_nothing_twice(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    """What a sender's retry of a batch that timed out finds: the envelopes stored the first
    time are answered with their first answer, the new ones are accepted."""
    stored = [_forwarded(api, peer_key) for _ in range(3)]
    first = _signed_post(api.client, BATCH, _batch(stored), peer_key)
    assert first.status_code == 200, first.text
    fresh = _forwarded(api, peer_key)
    again = _signed_post(api.client, BATCH, _batch([*stored, fresh]), peer_key)
    assert again.status_code == 200, again.text
    results = again.json()["results"]
    assert [x["status"] for x in results] == [200, 200, 200, 202]
    assert [x["accepted"] for x in results[:3]] == [x["accepted"] for x in first.json()["results"]]
    assert count_rows(sync_engine, "messages") == 4
    assert count_rows(sync_engine, "audit_events", "kind = 'message:accepted'") == 4


def test_a_batch_that_times_out_is_sent_again_and_delivered_once(
    api: Api, sync_engine: Engine
) -> None:
    settings = api.settings.model_copy(update={"delivery_timeout_seconds": 0.5})
    with peer_server(PeerNodeStub(_node_keys(api), slow_first=1.5)) as stub:
        _register_peer(api, "nl.fiu", stub.url, stub.key)
        ids = _send_to(api, "nl.fiu", 3)
        report = deliver_once(settings)
        assert (report.delivered, report.retry) == (0, 3)
        with sync_engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET next_attempt_at = NULL"))
        time.sleep(1.5)  # the stub's late answer is gone
        report = deliver_once(settings)
        assert report.delivered == 3
        assert stub.requests == [(BATCH, 3), (BATCH, 3)]
        assert sorted(stub.stored) == sorted(ids)  # stored once each on the peer's side
    for message_id in ids:
        assert [o for _, o in _attempts(api, message_id)] == ["failed", "delivered"]
    assert count_rows(sync_engine, "outbox") == 0
    assert count_rows(sync_engine, "audit_events", "kind = 'message:delivered'") == 3


def test_the_worker_spreads_a_large_group_over_concurrent_batches(
    api: Api, sync_engine: Engine
) -> None:
    """60 due rows, four calls to spare: three requests of 20 side by side, not one of 60
    (a batch is split no smaller than SPREAD_MIN rows)."""
    assert SPREAD_MIN == 25
    with peer_server(PeerNodeStub(_node_keys(api))) as stub:
        _register_peer(api, "nl.fiu", stub.url, stub.key)
        _send_to(api, "nl.fiu", 60)
        report = deliver_once(api.settings)  # concurrency 4
        assert report.delivered == 60
        assert sorted(stub.requests) == [(BATCH, 20)] * 3
    assert count_rows(sync_engine, "outbox") == 0
