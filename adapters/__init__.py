"""Transports to partner systems, each behind the ``Adapter`` Protocol of
``adapters.contracts``, chosen per participant by its ``adapter`` and
``adapter_config``.

Adapters import only broker's public contracts (envelope, errors, crypto, the adapter
Protocol), never its database or services: import-linter holds this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import filedrop, goaml, inbox, peer, webhook
from adapters.contracts import (
    Adapter,
    AdapterConfigError,
    AdapterSpec,
    DestinationRules,
    NodeIdentity,
)
from adapters.destinations import STRICT

ADAPTERS: dict[str, AdapterSpec] = {
    spec.name: spec for spec in (inbox.SPEC, webhook.SPEC, peer.SPEC, filedrop.SPEC, goaml.SPEC)
}
DEFAULT = "inbox"


def check_config(
    name: str,
    config: Mapping[str, Any] | None,
    *,
    rules: DestinationRules = STRICT,
    probe: bool = True,
) -> dict[str, Any]:
    """The normalised configuration. Raises AdapterConfigError for an unknown adapter or a
    configuration it cannot use under the node's destination ``rules`` (with ``probe``,
    also what it needs outside: a directory)."""
    spec = ADAPTERS.get(name)
    if spec is None:
        raise AdapterConfigError(
            f"unknown adapter {name!r}: known are {', '.join(sorted(ADAPTERS))}", field="adapter"
        )
    if config is not None and not isinstance(config, Mapping):
        raise AdapterConfigError("adapter_config must be an object", field="adapter_config")
    checked = spec.check(config or {}, rules)
    if probe and spec.probe is not None:
        spec.probe(checked)
    return checked


def build_adapter(name: str, config: Mapping[str, Any] | None, node: NodeIdentity) -> Adapter:
    """Raises AdapterConfigError, as check_config (without probing)."""
    normalised = check_config(name, config, rules=node.rules, probe=False)
    return ADAPTERS[name].build(normalised, node)


__all__ = [
    "ADAPTERS",
    "DEFAULT",
    "STRICT",
    "DestinationRules",
    "build_adapter",
    "check_config",
]
