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
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

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
from adapters.destinations import STRICT
from adapters.webhook import RETRYABLE_4XX, check_url
from broker.core import crypto
from broker.core.errors import PalermoError
from broker.envelopes import dsse

FEDERATION_PATH = "/v1/federation/envelopes"


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
    key = decode_node_key(config.get("node_key"))
    return {"url": url, "node_key": base64.b64encode(key).decode()}


class PeerAdapter:
    name = "peer"
    pull = False

    def __init__(self, config: dict[str, Any], node: NodeIdentity) -> None:
        self.url = config["url"] + FEDERATION_PATH
        self.node_key = decode_node_key(config["node_key"])
        self.node_key_id = crypto.key_id(self.node_key)
        self.node = node
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.node.timeout_seconds)
        return self._client

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        body = item.envelope.to_json()
        headers = {"Content-Type": "application/json", "X-Palermo-Node": self.node.node_id}
        headers.update(
            httpsig.sign(
                method="POST", url=self.url, headers=headers, body=body, signer=self.node.signer
            )
        )
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return DeliveryResult.retry("the peer node did not answer in time")
        except httpx.HTTPError as exc:
            return DeliveryResult.retry(f"the peer node is unreachable ({type(exc).__name__})")
        status = response.status_code
        if status in (200, 202):
            return self._accepted(item, response.content, status)
        if status in RETRYABLE_4XX or status >= 500:
            return DeliveryResult.retry(f"HTTP {status} from the peer node", status=status)
        return DeliveryResult.reject(
            f"HTTP {status}: the peer node refused it ({_problem_type(response.content)})",
            status=status,
        )

    def _accepted(self, item: Outgoing, content: bytes, status: int) -> DeliveryResult:
        """Delivered only if the answer carries the peer's countersignature of our payload."""
        try:
            answer = orjson.loads(content)
            theirs = dsse.parse_envelope(answer["envelope"])
        except (orjson.JSONDecodeError, KeyError, TypeError, PalermoError):
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
                )
        return DeliveryResult.retry("the peer node's countersignature is missing or invalid")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


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
