"""``inbox`` (the default): the recipient pulls its messages with ``GET /v1/inbox``.

Nothing leaves the node: the node completes an inbox delivery itself by writing the inbox
entry under its inbox lock, so sequence numbers grow in commit order and a cursor never skips
a message. This adapter takes no configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.contracts import (
    AdapterConfigError,
    AdapterSpec,
    DeliveryResult,
    DestinationRules,
    NodeIdentity,
    Outgoing,
)
from adapters.destinations import STRICT


class InboxAdapter:
    name = "inbox"
    pull = True

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        """Nothing to push: the node stores the message in the recipient's inbox."""
        return DeliveryResult.ok(inbox=True)

    async def aclose(self) -> None:
        return None


def check(config: Mapping[str, Any], rules: DestinationRules = STRICT) -> dict[str, Any]:
    if config:
        raise AdapterConfigError(
            f"the inbox adapter takes no configuration, got {sorted(config)}",
            field="adapter_config",
        )
    return {}


def build(config: dict[str, Any], node: NodeIdentity) -> InboxAdapter:
    return InboxAdapter()


SPEC = AdapterSpec(
    name="inbox", summary="the recipient pulls (GET /v1/inbox)", check=check, build=build
)
