"""The client address of a request: the peer, or what trusted proxies say it is.

Login throttling and the audit of failed logins count attempts per client address, so the
address must be one the client cannot choose. The rule (RFC 7239's, for
``X-Forwarded-For``):

- the peer (the TCP connection's other end) is the client, unless the peer is one of the
  operator's trusted proxies (``PALERMO_TRUSTED_PROXIES``, empty by default);
- behind a trusted proxy, the client is the right-most address in ``X-Forwarded-For`` that
  is not itself a trusted proxy: each proxy appends the address it saw, so everything left
  of the first untrusted hop was written by someone the node does not trust;
- the header of an untrusted peer is never read; a malformed entry stops the walk and the
  last trusted hop is the client (never an error: a broken header must not turn into a 500,
  nor into an address an attacker picked).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma- or space-separated addresses and CIDR networks (``10.0.0.1, 10.1.0.0/16``).

    Raises ValueError naming the entry that is neither."""
    networks: list[IPNetwork] = []
    for entry in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


def _address(value: str) -> IPAddress | None:
    text = value.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == n.version and address in n for n in trusted)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str:
    """The client address of a request from ``peer`` carrying the ``X-Forwarded-For``
    header values ``forwarded_for`` (each possibly a comma-separated list), with ``trusted``
    the trusted proxies. ``""`` when there is no peer (a test client without one)."""
    if not peer:
        return ""
    current = _address(peer)
    if current is None or not trusted or not _trusted(current, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # malformed: the last trusted hop is as far as the node can see
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)


__all__ = ["IPNetwork", "client_address", "parse_networks"]
