"""What the case workflows take from the node's settings, parsed once per process."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.clocks import ReferenceClock, load_clocks
from broker.core.context import CallContext
from broker.core.settings import ConfigurationError, Settings
from broker.messages import ReviewTerms
from broker.policy.service import NodePolicy


class MessageConsents(Protocol):
    """The consents granted through the message door for the material any event of a case
    carried, valid at ``now``, each as ``{"consent", "provider", "recipient", "purpose",
    "valid_until"}`` (``broker.consents.service.message_consents_under``). The cases domain
    does not import the consents domain, which builds on it: the application hands the
    lookup in (``app.state.message_consents``), as it hands the HTTP layer its callers."""

    async def __call__(
        self, session: AsyncSession, *, case_id: str, now: dt.datetime
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class CaseConfig:
    clocks: tuple[ReferenceClock, ...]
    retention: dt.timedelta
    urgent_escalation: dt.timedelta
    evidence_dir: Path
    evidence_max_bytes: int
    max_filters: int
    review: ReviewTerms
    # None: a process that opens no consent thread (the timers); a guard that reads the
    # message door's consents then fails closed (broker.cases.service.firing).
    message_consents: MessageConsents | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, message_consents: MessageConsents | None = None
    ) -> CaseConfig:
        """Raises ConfigurationError when the clocks file does not load."""
        try:
            clocks = load_clocks(settings.case_clocks_file)
        except ValueError as exc:
            raise ConfigurationError(f"PALERMO_CASE_CLOCKS_FILE: {exc}") from exc
        return cls(
            clocks=clocks,
            retention=dt.timedelta(days=settings.case_retention_days),
            urgent_escalation=dt.timedelta(hours=settings.urgent_confirmation_hours),
            evidence_dir=settings.evidence_dir or (settings.data_dir / "evidence"),
            evidence_max_bytes=settings.evidence_max_bytes,
            max_filters=settings.fiu_match_max_filters,
            review=ReviewTerms.from_settings(settings),
            message_consents=message_consents,
        )


CaseContext = CallContext[NodePolicy | None, CaseConfig]
"""The context a case service takes: node, caller, policy, case configuration, now."""
