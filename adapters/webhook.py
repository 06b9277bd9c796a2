"""``webhook``: HTTP push of the countersigned envelope to the agency's endpoint.

Configuration: ``{"url": "https://agency.example/palermo", "receipt": true}``. The URL must be
https, except on a loopback host (a gateway on the same machine, which needs
``PALERMO_WEBHOOK_ALLOW_PRIVATE=true``). ``receipt`` (default true):
the delivery completes only with a 2xx whose body is the recipient's signed ``receipt``
envelope (the node verifies it against the recipient's registered keys).

The request is ``POST`` with the envelope JSON as body, ``Content-Type: application/json``,
``Content-Digest`` (RFC 9530) and an RFC 9421 signature by the node key (``ed25519``,
``keyid`` = the node key id published at ``GET /v1/node``, tag ``palermo``) covering
``@method``, ``@target-uri``, ``content-type`` and ``content-digest``. The agency
deduplicates by message id (``X-Palermo-Message-Id``, also the payload's id).

Destinations (``adapters.destinations``): the host must be a public address, at
configuration and, resolved, before each delivery (a refusal there dead-letters the
message, and nothing is connected to), unless ``PALERMO_WEBHOOK_ALLOW_PRIVATE=true``. The
push goes to the address that was checked, not to the name: the URL's host is replaced by
that address, the name kept in ``Host`` and as TLS's SNI and certificate name, so the
resolver is asked once per delivery and cannot answer something else for the connection
(DNS rebinding).

Outcomes: 2xx (with a receipt when required) delivers; 408, 425, 429, 5xx, timeouts and
connection errors are retried; any other 4xx is a permanent refusal (dead letter).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from adapters import httpsig
from adapters.contracts import (
    AdapterConfigError,
    AdapterSpec,
    DeliveryResult,
    DestinationRules,
    NodeIdentity,
    Outgoing,
)
from adapters.destinations import (
    STRICT,
    DisallowedDestinationError,
    IPAddress,
    check_host,
    resolve_and_check,
)

RETRYABLE_4XX = {408, 425, 429}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: Any, *, field: str = "adapter_config.url") -> str:
    """Raises AdapterConfigError unless ``value`` is an absolute https URL (http only on a
    loopback host)."""
    if not isinstance(value, str) or not value:
        raise AdapterConfigError("url is required", field=field)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AdapterConfigError(f"url {value!r} is not an absolute http(s) URL", field=field)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise AdapterConfigError(
            f"url {value!r}: use https (plain http only to a loopback host)", field=field
        )
    if parts.username or parts.password or parts.fragment:
        raise AdapterConfigError("url must not carry credentials or a fragment", field=field)
    return value


def check(config: Mapping[str, Any], rules: DestinationRules = STRICT) -> dict[str, Any]:
    unknown = set(config) - {"url", "receipt"}
    if unknown:
        raise AdapterConfigError(
            f"unknown webhook setting {sorted(unknown)[0]!r}", field="adapter_config"
        )
    receipt = config.get("receipt", True)
    if not isinstance(receipt, bool):
        raise AdapterConfigError("receipt must be true or false", field="adapter_config.receipt")
    url = check_url(config.get("url"))
    check_host(urlsplit(url).hostname or "", rules, field="adapter_config.url")
    return {"url": url, "receipt": receipt}


class WebhookAdapter:
    name = "webhook"
    pull = False

    def __init__(
        self,
        config: dict[str, Any],
        node: NodeIdentity,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url: str = config["url"]
        self.receipt_required: bool = config["receipt"]
        self.node = node
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.node.timeout_seconds, transport=self._transport
            )
        return self._client

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        parts = urlsplit(self.url)
        try:
            addresses = await resolve_and_check(
                parts.hostname or "",
                parts.port or (443 if parts.scheme == "https" else 80),
                self.node.rules,
            )
        except (DisallowedDestinationError, AdapterConfigError) as exc:
            # The name points inside (or the setting that allowed it is gone): a refusal,
            # dead-lettered at once; the operator fixes the URL and requeues.
            return DeliveryResult.reject(str(exc))
        except OSError as exc:
            return DeliveryResult.retry(f"the endpoint's host does not resolve ({exc})")
        body = item.envelope.to_json()
        headers = {
            "Content-Type": "application/json",
            "X-Palermo-Message-Id": item.message_id,
            "X-Palermo-Node": self.node.node_id,
        }
        headers.update(
            httpsig.sign(
                method="POST", url=self.url, headers=headers, body=body, signer=self.node.signer
            )
        )
        # Every checked address is tried in the resolver's order until one accepts the
        # connection (a host with an unreachable IPv6 address and a working IPv4 one still
        # gets its message). Only a failure to connect moves on: once a connection is made,
        # the request may have arrived, and the delivery is retried later as a whole.
        targets: list[IPAddress | None] = list(addresses) or [None]
        failure = "the endpoint is unreachable"
        for address in targets:
            request = pinned_request(self.client, self.url, address, body, headers)
            try:
                response = await self.client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = f"the endpoint is unreachable ({type(exc).__name__})"
                if len(targets) > 1:
                    failure += f" at each of its {len(targets)} addresses"
                continue
            except httpx.TimeoutException:
                return DeliveryResult.retry("the endpoint did not answer in time")
            except httpx.HTTPError as exc:
                return DeliveryResult.retry(f"the endpoint is unreachable ({type(exc).__name__})")
            return interpret(response.status_code, response.content, self.receipt_required)
        return DeliveryResult.retry(failure)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def pinned_request(
    client: httpx.AsyncClient,
    url: str,
    address: IPAddress | None,
    body: bytes,
    headers: Mapping[str, str],
) -> httpx.Request:
    """``POST url`` sent to ``address`` (a checked address of the URL's host): the URL's host
    is the address, ``Host`` and the TLS server name (SNI, and the name the certificate must
    match) stay the URL's host. With no address, the request goes to the name."""
    if address is None:
        return client.build_request("POST", url, content=body, headers=headers)
    original = httpx.URL(url)
    return client.build_request(
        "POST",
        original.copy_with(host=str(address)),
        content=body,
        headers={**headers, "Host": original.netloc.decode("ascii")},
        extensions={"sni_hostname": original.raw_host.decode("ascii")},
    )


def interpret(status: int, content: bytes, receipt_required: bool) -> DeliveryResult:
    """What an HTTP answer means for the delivery."""
    if 200 <= status < 300:
        receipt = content.strip() or None
        if receipt_required and receipt is None:
            return DeliveryResult.retry(f"HTTP {status} without the signed receipt", status=status)
        return DeliveryResult.ok(receipt=receipt, status=status)
    if status in RETRYABLE_4XX or status >= 500:
        return DeliveryResult.retry(f"HTTP {status} from the endpoint", status=status)
    return DeliveryResult.reject(f"HTTP {status}: the endpoint refused the message", status=status)


def build(config: dict[str, Any], node: NodeIdentity) -> WebhookAdapter:
    return WebhookAdapter(config, node)


SPEC = AdapterSpec(
    name="webhook",
    summary="HTTP push signed by the node (RFC 9421); a signed receipt completes it",
    check=check,
    build=build,
)
