"""DNS rebinding (adapters/webhook.py, adapters/destinations.py): at delivery the webhook's
host is resolved once, every answer checked, and the push connects to a checked address
with the name kept in Host and as the TLS server name, so a second resolution that answers
an inside address never happens. The resolver is a stub; the connection a MockTransport."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

import adapters.destinations
from adapters.contracts import DeliveryResult, DestinationRules, NodeIdentity, Outgoing
from adapters.webhook import WebhookAdapter, check, pinned_request
from broker.core import crypto
from broker.envelopes import dsse

SIGNER = crypto.Signer(bytes(range(32)))
NODE = NodeIdentity(node_id="it.palermo", signer=SIGNER, rules=DestinationRules())
URL = "https://agency.example:8443/palermo?x=1"


class Resolver:
    """Answers from a script, one list of addresses per call, and counts the calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


def _adapter(sent: list[httpx.Request], status: int = 200) -> WebhookAdapter:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=b'{"receipt":true}')

    config = check({"url": URL})
    return WebhookAdapter(config, NODE, transport=httpx.MockTransport(handler))


def _item() -> Outgoing:
    envelope = dsse.sign_envelope(b'{"a":1}', SIGNER)
    return Outgoing(
        message_id="m-1",
        message_type="intel.message",
        sender="de.bka",
        recipient="nl.fiu",
        attempt=1,
        envelope=envelope,
    )


def _deliver(adapter: WebhookAdapter) -> DeliveryResult:
    async def run() -> DeliveryResult:
        try:
            return await adapter.deliver(_item())
        finally:
            await adapter.aclose()

    return asyncio.run(run())


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    stub = Resolver(["93.184.215.14"])
    monkeypatch.setattr(adapters.destinations, "resolve", stub)
    return stub


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (["127.0.0.1"], "loopback"),
        (["169.254.169.254"], "link-local"),
        (["93.184.215.14", "10.0.0.7"], "private"),  # one inside answer is enough
        (["::ffff:127.0.0.1"], "loopback"),
    ],
)
def test_a_name_that_resolves_inside_at_delivery_is_refused_without_a_connection(
    resolver: Resolver, sent: list[httpx.Request], answer: list[str], reason: str
) -> None:
    resolver.answers = [answer]
    result = _deliver(_adapter(sent))
    assert not result.delivered
    assert result.permanent  # dead-lettered, not retried
    error = result.error or ""
    assert "agency.example resolves to " in error
    assert reason in error
    assert "PALERMO_WEBHOOK_ALLOW_PRIVATE" in error
    assert sent == []  # nothing was connected to
    assert resolver.calls == [("agency.example", 8443)]


def test_a_public_answer_is_pinned_with_host_and_sni_kept(
    resolver: Resolver, sent: list[httpx.Request]
) -> None:
    # A rebinding resolver: public first, loopback for any later look-up.
    resolver.answers = [["93.184.215.14"], ["127.0.0.1"]]
    result = _deliver(_adapter(sent))
    assert result.delivered, result
    (request,) = sent
    assert request.url.host == "93.184.215.14"  # connected to the checked address
    assert request.url.port == 8443
    assert request.url.raw_path == b"/palermo?x=1"
    assert request.headers["host"] == "agency.example:8443"
    assert request.extensions["sni_hostname"] == "agency.example"
    assert len(resolver.calls) == 1  # asked once: no second answer could be used
    assert "signature" in request.headers  # signed over the URL with its name (httpsig)


def test_an_ipv6_answer_is_pinned_in_brackets(
    resolver: Resolver, sent: list[httpx.Request]
) -> None:
    resolver.answers = [["2606:4700::1111"]]
    assert _deliver(_adapter(sent)).delivered
    (request,) = sent
    assert request.url.host == "2606:4700::1111"
    assert request.url.netloc == b"[2606:4700::1111]:8443"
    assert request.headers["host"] == "agency.example:8443"


def _adapter_with(handler: httpx.MockTransport) -> WebhookAdapter:
    return WebhookAdapter(check({"url": URL}), NODE, transport=handler)


def test_an_address_that_refuses_the_connection_falls_through_to_the_next(
    resolver: Resolver,
) -> None:
    # A host with an unreachable IPv6 address and a working IPv4 one: the push still lands,
    # on a checked address, with the name kept.
    resolver.answers = [["2606:4700::1111", "93.184.215.14"]]
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        if request.url.host == "2606:4700::1111":
            raise httpx.ConnectError("Network is unreachable", request=request)
        return httpx.Response(200, content=b'{"receipt":true}')

    result = _deliver(_adapter_with(httpx.MockTransport(handler)))
    assert result.delivered, result
    assert tried == ["2606:4700::1111", "93.184.215.14"]
    assert len(resolver.calls) == 1  # the name is not looked up again between addresses


def test_when_no_address_connects_the_delivery_is_retried_naming_them_all(
    resolver: Resolver,
) -> None:
    resolver.answers = [["2606:4700::1111", "93.184.215.14"]]
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        raise httpx.ConnectTimeout("timed out", request=request)

    result = _deliver(_adapter_with(httpx.MockTransport(handler)))
    assert not result.delivered
    assert not result.permanent
    assert "at each of its 2 addresses" in (result.error or "")
    assert tried == ["2606:4700::1111", "93.184.215.14"]


def test_a_timeout_after_connecting_is_not_resent_to_another_address(
    resolver: Resolver,
) -> None:
    # Once connected the request may have arrived: no second copy to the next address.
    resolver.answers = [["2606:4700::1111", "93.184.215.14"]]
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        raise httpx.ReadTimeout("no answer", request=request)

    result = _deliver(_adapter_with(httpx.MockTransport(handler)))
    assert not result.delivered
    assert not result.permanent
    assert "did not answer in time" in (result.error or "")
    assert tried == ["2606:4700::1111"]


def test_a_name_that_does_not_resolve_is_retried(
    monkeypatch: pytest.MonkeyPatch, sent: list[httpx.Request]
) -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    monkeypatch.setattr(adapters.destinations, "resolve", fails)
    result = _deliver(_adapter(sent))
    assert not result.delivered
    assert not result.permanent
    assert "does not resolve" in (result.error or "")
    assert sent == []


def test_with_the_setting_the_name_is_used_and_nothing_resolved(
    resolver: Resolver, sent: list[httpx.Request]
) -> None:
    node = NodeIdentity(
        node_id="it.palermo", signer=SIGNER, rules=DestinationRules(allow_private_addresses=True)
    )

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b"{}")

    adapter = WebhookAdapter(check({"url": URL}), node, transport=httpx.MockTransport(handler))
    assert _deliver(adapter).delivered
    assert sent[0].url.host == "agency.example"
    assert resolver.calls == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_pinned_request_over_real_tls_keeps_sni_and_the_certificate_name(
    tmp_path: Path,
) -> None:
    """A TLS server on 127.0.0.1 with a certificate for agency.test only: the pinned request
    reaches it (SNI and the certificate check use the name), the bare address does not."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=agency.test", "-addext", "subjectAltName=DNS:agency.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            body = f"host={self.headers['host']}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    async def run() -> tuple[httpx.Response, BaseException | None]:
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trust, timeout=10) as client:
            request = pinned_request(
                client,
                f"https://agency.test:{port}/hook",
                ipaddress.ip_address("127.0.0.1"),
                b"{}",
                {"Content-Type": "application/json"},
            )
            response = await client.send(request)
            try:
                await client.post(f"https://127.0.0.1:{port}/hook", content=b"{}")
            except httpx.ConnectError as exc:
                return response, exc
            return response, None

    try:
        response, bare = asyncio.run(run())
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert response.text == f"host=agency.test:{port}"
    assert names[0] == "agency.test"
    assert bare is not None  # the certificate does not name the address
