"""Where an adapter may send: the rules that keep a destination from turning the node
against its own network or its own files.

A webhook URL reaches only public addresses: loopback, link-local (169.254.0.0/16, where
cloud metadata services answer, and fe80::/10), private (RFC 1918, fc00::/7, 100.64.0.0/10),
unspecified, multicast, reserved and documentation addresses are refused, unless the
operator allows them (``PALERMO_WEBHOOK_ALLOW_PRIVATE=true``, a gateway on the same machine
or the same private network). The rule holds twice: when the URL is configured (a literal
address, ``localhost`` and the metadata host names) and before every delivery, where the
host name is resolved and the push refused if any of its addresses is disallowed, so a name
that points inside after it was configured is caught too. The delivery then connects to an
address that was checked (``resolve_and_check`` returns them; the webhook pins it, with the
name kept in ``Host`` and in TLS's SNI and certificate check), so a second resolution that
answers differently (DNS rebinding) never takes place.

A drop directory (filedrop, goAML) is never a system directory (``/``, ``/etc``, ``/usr``,
``/proc``...) nor the node's own data or evidence directory: the node would write envelopes
among its secrets, or the importer move files it must never touch. Paths are compared
after symbolic links are resolved.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from pathlib import Path

from adapters.contracts import AdapterConfigError, DestinationRules
from broker.core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Host names that always mean a cloud metadata service, or this machine.
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal"})
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"}) | METADATA_NAMES
# Addresses Python does not class as private but that are not the public Internet.
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT

# Refused with everything below them: the system's own trees.
SYSTEM_TREES = tuple(
    Path(p)
    for p in (
        "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/proc",
        "/sys", "/dev", "/boot",
    )
)  # fmt: skip
# Refused themselves (a subdirectory of them is where a deployment puts its drop).
SYSTEM_DIRECTORIES = frozenset(
    Path(p)
    for p in ("/", "/var", "/var/lib", "/var/log", "/var/run", "/run", "/home", "/root",
              "/tmp", "/var/tmp", "/opt", "/srv", "/mnt", "/media")  # noqa: S108 - refused, not used
)  # fmt: skip


STRICT = DestinationRules()


def rules_from(settings: Settings) -> DestinationRules:
    """The rules a node runs under: its setting, its data and evidence directories."""
    return DestinationRules(
        allow_private_addresses=settings.webhook_allow_private,
        node_directories=(settings.data_dir,),
        node_trees=(settings.evidence_dir or settings.data_dir / "evidence",),
    )


def disallowed_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return disallowed_reason(address.ipv4_mapped)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private or address in _SHARED),
        ("reserved", address.is_reserved),
        ("not globally reachable", not address.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def check_host(host: str, rules: DestinationRules, *, field: str) -> None:
    """At configuration time: refuse a host that is a disallowed literal address or a name
    that always means this machine or a metadata service. Raises AdapterConfigError."""
    if rules.allow_private_addresses:
        return
    name = host.lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        raise AdapterConfigError(
            f"host {host!r} is this machine or a metadata service: refused "
            "(PALERMO_WEBHOOK_ALLOW_PRIVATE=true allows it)",
            field=field,
        )
    address = _literal(name)
    if address is not None and (reason := disallowed_reason(address)) is not None:
        raise AdapterConfigError(
            f"address {address} is {reason}: refused "
            "(PALERMO_WEBHOOK_ALLOW_PRIVATE=true allows it)",
            field=field,
        )


def peer_disallowed_reason(address: IPAddress, rules: DestinationRules) -> str | None:
    """Why ``address`` may not be a peer node's, or None if it may. Nodes often federate over
    one private network, so private ranges are allowed; what is never a peer node is refused:
    link-local (where cloud metadata answers), unspecified, multicast and reserved addresses,
    and loopback unless the node's rules are lifted (a test or a single-machine setup)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return peer_disallowed_reason(address.ipv4_mapped, rules)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback and not rules.allow_private_addresses),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved and not address.is_loopback),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


def check_peer_host(host: str, rules: DestinationRules, *, field: str) -> None:
    """At configuration time, for a peer node's URL: refuse a metadata service's name, this
    machine's names (unless the rules are lifted) and a literal address that
    :func:`peer_disallowed_reason` refuses. Raises AdapterConfigError."""
    name = host.lower().rstrip(".")
    if name in METADATA_NAMES:
        raise AdapterConfigError(f"host {host!r} is a metadata service: refused", field=field)
    if not rules.allow_private_addresses and (name in LOCAL_NAMES or name.endswith(".localhost")):
        raise AdapterConfigError(
            f"host {host!r} is this machine: refused as a peer node "
            "(PALERMO_WEBHOOK_ALLOW_PRIVATE=true allows it)",
            field=field,
        )
    address = _literal(name)
    if address is not None and (reason := peer_disallowed_reason(address, rules)) is not None:
        raise AdapterConfigError(
            f"address {address} is {reason}: refused as a peer node", field=field
        )


class DisallowedDestinationError(Exception):
    """The host resolved to an address the rules refuse."""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order (OSError if none)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in infos]


async def resolve_and_check(host: str, port: int, rules: DestinationRules) -> list[IPAddress]:
    """Before a delivery: resolve ``host`` and return its addresses, all checked; the caller
    connects to one of them, never to the name. Raises DisallowedDestinationError if any of
    them is refused, or the resolver answers no address; OSError if the name does not
    resolve. With the rules lifted (``allow_private_addresses``) nothing is resolved and the
    list is empty: connect to the name."""
    if rules.allow_private_addresses:
        return []
    check_host(host, rules, field="adapter_config.url")
    literal = _literal(host)
    if literal is not None:
        return [literal]  # checked by check_host: nothing to resolve
    answers = await resolve(host.strip("[]"), port)
    if not answers:
        raise DisallowedDestinationError(f"{host} resolves to no address")
    addresses: list[IPAddress] = []
    for answer in answers:
        address = _literal(answer)
        if address is None:
            raise DisallowedDestinationError(f"{host} resolves to {answer!r}, not an address")
        if (reason := disallowed_reason(address)) is not None:
            raise DisallowedDestinationError(
                f"{host} resolves to {address}, which is {reason}: refused "
                "(PALERMO_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
        if address not in addresses:
            addresses.append(address)
    return addresses


def _within(path: Path, tree: Path) -> bool:
    return path == tree or tree in path.parents


def check_directory(directory: str, rules: DestinationRules, *, field: str) -> None:
    """Refuse a drop directory that is a system directory or the node's own. Raises
    AdapterConfigError."""
    path = Path(os.path.realpath(directory))
    if path in SYSTEM_DIRECTORIES or any(_within(path, t) for t in SYSTEM_TREES):
        raise AdapterConfigError(
            f"directory {directory} is a system directory: choose a directory of its own",
            field=field,
        )
    own = [(d, False) for d in rules.node_directories] + [(t, True) for t in rules.node_trees]
    for directory_of_node, tree in own:
        resolved = Path(os.path.realpath(directory_of_node))
        if path == resolved or (tree and _within(path, resolved)):
            raise AdapterConfigError(
                f"directory {directory} is the node's own ({directory_of_node}): choose another",
                field=field,
            )
