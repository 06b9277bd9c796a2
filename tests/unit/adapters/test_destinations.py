"""Destination rules (adapters/destinations.py): the addresses a webhook may not reach and
the directories a drop may not be, with and without PALERMO_WEBHOOK_ALLOW_PRIVATE."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path

import pytest

import adapters
from adapters.contracts import AdapterConfigError, DestinationRules
from adapters.destinations import (
    STRICT,
    DisallowedDestinationError,
    disallowed_reason,
    resolve_and_check,
)

ALLOW = DestinationRules(allow_private_addresses=True)

REFUSED_HOSTS = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("[::1]", "loopback"),
    ("localhost", "this machine"),
    ("api.localhost", "this machine"),
    ("169.254.169.254", "link-local"),  # AWS, Azure, GCP metadata
    ("[fe80::1]", "link-local"),
    ("metadata.google.internal", "metadata"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),
    ("[fc00::1]", "private"),
    ("[fd12:3456::1]", "private"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:169.254.169.254]", "link-local"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED_HOSTS)
def test_a_webhook_to_an_inside_address_is_refused(host: str, reason: str) -> None:
    with pytest.raises(AdapterConfigError) as caught:
        adapters.check_config("webhook", {"url": f"https://{host}/hook"})
    assert reason in caught.value.detail
    assert "PALERMO_WEBHOOK_ALLOW_PRIVATE" in caught.value.detail
    assert caught.value.extra["field"] == "adapter_config.url"


@pytest.mark.parametrize(("host", "reason"), REFUSED_HOSTS)
def test_the_setting_allows_inside_addresses(host: str, reason: str) -> None:
    url = f"https://{host}/hook"
    assert adapters.check_config("webhook", {"url": url}, rules=ALLOW)["url"] == url


def test_plain_http_to_loopback_needs_the_setting_too() -> None:
    with pytest.raises(AdapterConfigError):
        adapters.check_config("webhook", {"url": "http://127.0.0.1:8080/hook"})
    assert adapters.check_config("webhook", {"url": "http://127.0.0.1:8080/hook"}, rules=ALLOW)


@pytest.mark.parametrize("host", ["agency.example", "93.184.215.14", "[2606:4700::1111]"])
def test_public_hosts_are_accepted(host: str) -> None:
    assert adapters.check_config("webhook", {"url": f"https://{host}/hook"})["receipt"] is True


def test_public_addresses_have_no_reason() -> None:
    assert disallowed_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert disallowed_reason(ipaddress.ip_address("2001:4860:4860::8888")) is None


def test_delivery_refuses_a_name_that_resolves_inside() -> None:
    # This machine's own name: no literal, unknown to the configuration-time check, and it
    # resolves to one of this machine's addresses (loopback or a private one on a test box).
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
    reasons = {disallowed_reason(ipaddress.ip_address(a)) for a in addresses}
    if reasons == {None}:
        pytest.skip(f"{name} resolves to public addresses only: {sorted(addresses)}")
    assert adapters.check_config("webhook", {"url": f"https://{name}/hook"})
    with pytest.raises(DisallowedDestinationError, match=f"{name} resolves to .*, which is"):
        asyncio.run(resolve_and_check(name, 443, STRICT))
    asyncio.run(resolve_and_check(name, 443, ALLOW))


@pytest.mark.parametrize(
    "directory", ["/", "/etc", "/etc/palermo", "/bin", "/usr", "/usr/share/x", "/proc/self",
                  "/sys", "/dev", "/dev/shm", "/boot", "/var/lib", "/var", "/tmp", "/home"],
)  # fmt: skip
@pytest.mark.parametrize("adapter", ["filedrop", "goaml"])
def test_a_drop_in_a_system_directory_is_refused(adapter: str, directory: str) -> None:
    with pytest.raises(AdapterConfigError, match="system directory") as caught:
        adapters.check_config(adapter, {"directory": directory}, probe=False)
    assert caught.value.extra["field"] == "adapter_config.directory"


def test_a_symbolic_link_to_a_system_directory_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "drop"
    link.symlink_to("/etc")
    with pytest.raises(AdapterConfigError, match="system directory"):
        adapters.check_config("filedrop", {"directory": str(link)}, probe=False)


def test_a_drop_in_the_node_s_own_directories_is_refused(tmp_path: Path) -> None:
    data, evidence = tmp_path / "data", tmp_path / "data" / "evidence"
    evidence.mkdir(parents=True)
    rules = DestinationRules(node_directories=(data,), node_trees=(evidence,))
    for directory in (data, evidence, evidence / "ab"):
        with pytest.raises(AdapterConfigError, match="the node's own"):
            adapters.check_config("filedrop", {"directory": str(directory)}, rules=rules)
    drop = data / "drop"
    drop.mkdir()
    assert adapters.check_config("filedrop", {"directory": str(drop)}, rules=rules)
    assert adapters.check_config("filedrop", {"directory": "/srv/palermo/drop"}, probe=False)
    assert adapters.check_config("filedrop", {"directory": "/var/lib/palermo/drop"}, probe=False)


PEER_KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="  # base64 of 32 bytes "k"
# A peer node may be on the national network (private ranges), never where metadata answers.
PEER_REFUSED = [
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("metadata.google.internal", "metadata"),
    ("metadata", "metadata"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
]


@pytest.mark.parametrize(("host", "reason"), PEER_REFUSED)
def test_a_peer_node_is_never_a_metadata_or_non_unicast_address(host: str, reason: str) -> None:
    for rules in (STRICT, ALLOW):  # the setting lifts none of these
        with pytest.raises(AdapterConfigError) as caught:
            adapters.check_config(
                "peer", {"url": f"https://{host}", "node_key": PEER_KEY}, rules=rules
            )
        assert reason in caught.value.detail
        assert caught.value.extra["field"] == "adapter_config.url"


@pytest.mark.parametrize(
    "host", ["10.1.2.3", "192.168.1.1", "[fd12:3456::1]", "palermo.nl.example"]
)
def test_a_peer_node_may_be_on_a_private_network(host: str) -> None:
    config = {"url": f"https://{host}", "node_key": PEER_KEY}
    assert adapters.check_config("peer", config)["url"] == f"https://{host}"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"])
def test_a_peer_node_on_this_machine_needs_the_setting(host: str) -> None:
    config = {"url": f"https://{host}:8443", "node_key": PEER_KEY}
    with pytest.raises(AdapterConfigError) as caught:
        adapters.check_config("peer", config)
    assert "this machine" in caught.value.detail or "loopback" in caught.value.detail
    assert adapters.check_config("peer", config, rules=ALLOW)["url"] == config["url"]
