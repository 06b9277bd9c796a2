"""The client address behind proxies (broker.core.clientaddr): the peer unless it is a
trusted proxy; then the right-most untrusted hop of X-Forwarded-For; a malformed header
never raises and never yields an address the sender chose."""

from __future__ import annotations

import pytest

from broker.core.clientaddr import client_address, parse_networks
from broker.core.settings import Settings

PROXIES = parse_networks("10.0.0.0/8, 192.0.2.1 fd00::/8")


def test_no_trusted_proxies_means_the_peer_whatever_the_header() -> None:
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"


def test_an_untrusted_peer_cannot_forge_its_address() -> None:
    assert client_address("203.0.113.7", ["198.51.100.1, 10.0.0.1"], PROXIES) == "203.0.113.7"


def test_a_trusted_proxy_forwards_the_client() -> None:
    assert client_address("10.0.0.5", ["198.51.100.1"], PROXIES) == "198.51.100.1"


def test_the_right_most_untrusted_hop_wins_over_what_the_client_wrote() -> None:
    # The client wrote "1.1.1.1"; the edge proxy appended the address it saw.
    header = ["1.1.1.1, 198.51.100.1, 10.0.0.9"]
    assert client_address("10.0.0.5", header, PROXIES) == "198.51.100.1"


def test_several_header_lines_read_as_one_list() -> None:
    assert client_address("10.0.0.5", ["1.1.1.1", "198.51.100.1"], PROXIES) == "198.51.100.1"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("10.0.0.5", ["198.51.100.1:4711"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.5", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert client_address("::ffff:10.0.0.5", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("fd00::1", ["2001:db8::2"], PROXIES) == "2001:db8::2"


@pytest.mark.parametrize(
    "header",
    [
        ["not an address"],
        ["198.51.100.1, garbage"],
        [""],
        [" , "],
        ["\x00\xff"],
        ["[::1"],
        ["1.2.3.4.5"],
    ],
)
def test_a_malformed_header_stops_at_the_last_trusted_hop(header: list[str]) -> None:
    assert client_address("10.0.0.5", header, PROXIES) == "10.0.0.5"


def test_a_malformed_hop_left_of_a_good_one_is_never_reached() -> None:
    assert client_address("10.0.0.5", ["garbage, 198.51.100.1"], PROXIES) == "198.51.100.1"


def test_only_trusted_hops_give_the_left_most() -> None:
    assert client_address("10.0.0.5", ["10.0.0.8, 10.0.0.9"], PROXIES) == "10.0.0.8"


def test_no_header_from_a_trusted_proxy_is_the_proxy() -> None:
    assert client_address("10.0.0.5", [], PROXIES) == "10.0.0.5"


def test_a_peer_that_is_not_an_address_is_kept_as_it_is() -> None:
    assert client_address("testclient", ["198.51.100.1"], PROXIES) == "testclient"
    assert client_address(None, ["198.51.100.1"], PROXIES) == ""


def test_the_setting_is_checked_when_read() -> None:
    settings = Settings(trusted_proxies="10.0.0.0/8,192.0.2.1")
    assert settings.trusted_proxy_networks == parse_networks("10.0.0.0/8 192.0.2.1/32")
    assert Settings().trusted_proxy_networks == ()
    with pytest.raises(ValueError, match=r"PALERMO_TRUSTED_PROXIES: 'proxy\.example'"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example")
