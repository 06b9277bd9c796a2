"""Delivery's tables: the outbox and the delivery attempts.

They are defined in ``broker.messages.models``, beside the message they belong to: acceptance
writes a message's outbox row in its own transaction, and a message's status shows its
attempts, so ``messages`` needs them and must not import ``delivery`` (which sits above it).
This module names them for the delivery package.
"""

from broker.messages.models import DeliveryAttempt, DeliveryOutcome, OutboxEntry

__all__ = ["DeliveryAttempt", "DeliveryOutcome", "OutboxEntry"]
