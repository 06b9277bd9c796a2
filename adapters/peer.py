"""``peer``: federation to another Palermo node that hosts the recipient.

Configuration (on the participant that lives at the other node):
``{"url": "https://palermo.nl.example", "node_key": "<base64 Ed25519 public key>"}``: the peer
node's public URL and its node signing key (``GET /v1/node`` there). The same registration
tells the receiving side which node may forward messages from this participant: a node accepts
a forwarded envelope only from the node key configured for its sender.

The adapter POSTs the countersigned envelope (sender's signature, then this node's) to
``<url>/v1/federation/envelopes``, signed with RFC 9421 by this node's key. The peer verifies
the HTTP signature, the sender's signature and this node's countersignature, applies its own
policy, and answers with the envelope carrying its own countersignature: the adapter checks
that one under ``node_key`` before it counts the message delivered. The peer deduplicates by
message id, so a retry after a lost answer stores nothing twice.

Outcomes: 200/202 with a valid countersignature delivers; 408, 425, 429, 5xx, timeouts and
connection errors are retried; other 4xx (policy refusal, unknown participant) dead-letter.

Batches (``deliver_many``): the node hands the adapter every due message for the same peer
node at once; the adapter POSTs them in requests of at most ``batch_max_items`` envelopes and
``batch_max_bytes`` to ``<url>/v1/federation/batch``, one RFC 9421 signature per request, and
reads one result per envelope, each judged as the single answer would be (the same outcomes,
the countersignature checked per envelope). A request that fails as a whole (timeout, 5xx)
is retried whole: the peer answers the envelopes it already stored with their first answer.
A peer that does not know the batch endpoint (404, 405) or takes smaller batches (413, or
422 for the batch itself) gets the same envelopes one request each; a single message goes to
the single endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from adapters import httpsig
from adapters.contracts import (
    AdapterConfigError,
    AdapterSpec,
    DeliveryResult,
    DestinationRules,
    NodeIdentity,
    Outgoing,
)
from adapters.destinations import STRICT, check_peer_host
from adapters.webhook import RETRYABLE_4XX, check_url
from broker.core import crypto
from broker.core.errors import PalermoError
from broker.envelopes import dsse

FEDERATION_PATH = "/v1/federation/envelopes"
FEDERATION_BATCH_PATH = "/v1/federation/batch"
# Answers to a batch request that mean "send them one by one": no batch endpoint there (an
# older node), or a batch over that node's limits.
SEND_SINGLY = frozenset({404, 405, 413, 422})


def decode_node_key(value: Any, *, field: str = "adapter_config.node_key") -> bytes:
    """Raises AdapterConfigError unless ``value`` is base64 of a 32-byte Ed25519 key."""
    if not isinstance(value, str):
        raise AdapterConfigError("node_key (base64 Ed25519 public key) is required", field=field)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AdapterConfigError("node_key is not valid base64", field=field) from exc
    if len(raw) != 32:
        raise AdapterConfigError("node_key must be a 32-byte Ed25519 public key", field=field)
    return raw


def check(config: Mapping[str, Any], rules: DestinationRules = STRICT) -> dict[str, Any]:
    unknown = set(config) - {"url", "node_key"}
    if unknown:
        raise AdapterConfigError(
            f"unknown peer setting {sorted(unknown)[0]!r}", field="adapter_config"
        )
    url = check_url(config.get("url")).rstrip("/")
    check_peer_host(urlsplit(url).hostname or "", rules, field="adapter_config.url")
    key = decode_node_key(config.get("node_key"))
    return {"url": url, "node_key": base64.b64encode(key).decode()}


class PeerAdapter:
    name = "peer"
    pull = False

    def __init__(self, config: dict[str, Any], node: NodeIdentity) -> None:
        self.url = config["url"] + FEDERATION_PATH
        self.batch_url = config["url"] + FEDERATION_BATCH_PATH
        self.node_key = decode_node_key(config["node_key"])
        self.node_key_id = crypto.key_id(self.node_key)
        self.node = node
        # Participants behind the same peer node share it: one batch for all of them.
        self.batch_key = f"peer {config['url']} {self.node_key_id}"
        self.batch_max_items = node.batch_max_items
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.node.timeout_seconds)
        return self._client

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        response = await self._post(self.url, item.envelope.to_json())
        if isinstance(response, DeliveryResult):
            return response
        status = response.status_code
        if status in (200, 202):
            try:
                answer = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                return DeliveryResult.retry("the peer node's answer is not an accepted envelope")
            return self._accepted(item, answer, status)
        return _refused(status, _problem_type(response.content))

    async def deliver_many(self, items: Sequence[Outgoing]) -> list[DeliveryResult]:
        """One result per item, in order: batches of at most ``batch_max_items`` envelopes
        and ``batch_max_bytes``, sent concurrently."""
        batches: list[list[tuple[Outgoing, bytes]]] = [[]]
        size = 0
        for item in items:
            body = item.envelope.to_json()
            current = batches[-1]
            if current and (
                len(current) >= self.batch_max_items
                or size + len(body) + 64 > self.node.batch_max_bytes
            ):
                batches.append(current := [])
                size = 0
            current.append((item, body))
            size += len(body) + 1
        answers = await asyncio.gather(*(self._deliver_batch(b) for b in batches if b))
        return [result for answer in answers for result in answer]

    async def _deliver_batch(self, batch: list[tuple[Outgoing, bytes]]) -> list[DeliveryResult]:
        if len(batch) == 1:
            return [await self.deliver(batch[0][0])]
        body = b'{"envelopes":[' + b",".join(b for _, b in batch) + b"]}"
        response = await self._post(self.batch_url, body)
        if isinstance(response, DeliveryResult):
            return [response] * len(batch)
        status = response.status_code
        if status in SEND_SINGLY:
            return list(await asyncio.gather(*(self.deliver(item) for item, _ in batch)))
        if status != 200:
            return [_refused(status, _problem_type(response.content))] * len(batch)
        try:
            results = orjson.loads(response.content)["results"]
            if not isinstance(results, list) or len(results) != len(batch):
                raise TypeError("not one result per envelope")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return [DeliveryResult.retry("the peer node's answer is not a batch result")] * len(
                batch
            )
        return [
            self._batch_result(item, index, result, len(batch))
            for index, ((item, _), result) in enumerate(zip(batch, results, strict=True))
        ]

    def _batch_result(self, item: Outgoing, index: int, result: Any, size: int) -> DeliveryResult:
        """One envelope's result in a batch answer, judged as the single answer would be."""
        if not isinstance(result, dict) or result.get("index") != index:
            return DeliveryResult.retry("the peer node's batch result is out of order")
        status = result.get("status")
        if not isinstance(status, int):
            return DeliveryResult.retry("the peer node's batch result has no status")
        if status in (200, 202):
            return self._accepted(item, result.get("accepted"), status, batch=size)
        problem = result.get("problem")
        why = str(problem.get("type", "no problem type")) if isinstance(problem, dict) else ""
        return _refused(status, why or "no problem document", batch=size)

    async def _post(self, url: str, body: bytes) -> httpx.Response | DeliveryResult:
        """The signed request's answer, or the retry its failure calls for."""
        headers = {"Content-Type": "application/json", "X-Palermo-Node": self.node.node_id}
        headers.update(
            httpsig.sign(
                method="POST", url=url, headers=headers, body=body, signer=self.node.signer
            )
        )
        try:
            return await self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return DeliveryResult.retry("the peer node did not answer in time")
        except httpx.HTTPError as exc:
            return DeliveryResult.retry(f"the peer node is unreachable ({type(exc).__name__})")

    def _accepted(self, item: Outgoing, answer: Any, status: int, **detail: Any) -> DeliveryResult:
        """Delivered only if the answer carries the peer's countersignature of our payload."""
        try:
            theirs = dsse.parse_envelope(answer["envelope"])
        except (KeyError, TypeError, PalermoError):
            return DeliveryResult.retry("the peer node's answer is not an accepted envelope")
        if theirs.digest != item.envelope.digest:
            return DeliveryResult.retry("the peer node answered for another envelope")
        for index, sig in enumerate(theirs.signatures):
            if sig.keyid == self.node_key_id:
                try:
                    dsse.verify_signature(theirs, index, self.node_key)
                except PalermoError:
                    break
                return DeliveryResult.ok(
                    status=status,
                    remote_status=str(answer.get("status", "")),
                    remote_node_key=self.node_key_id,
                    **detail,
                )
        return DeliveryResult.retry("the peer node's countersignature is missing or invalid")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _refused(status: int, problem_type: str, **detail: Any) -> DeliveryResult:
    """The outcome of a refusal by the peer: retried if it may pass later, else final."""
    if status in RETRYABLE_4XX or status >= 500:
        return DeliveryResult.retry(f"HTTP {status} from the peer node", status=status, **detail)
    return DeliveryResult.reject(
        f"HTTP {status}: the peer node refused it ({problem_type})", status=status, **detail
    )


def _problem_type(content: bytes) -> str:
    try:
        return str(orjson.loads(content).get("type", "no problem type"))
    except (orjson.JSONDecodeError, AttributeError):
        return "no problem document"


def build(config: dict[str, Any], node: NodeIdentity) -> PeerAdapter:
    return PeerAdapter(config, node)


SPEC = AdapterSpec(
    name="peer",
    summary="forward to the Palermo node that hosts the recipient (federation)",
    check=check,
    build=build,
)
