"""What the case workflows take from the node's settings, parsed once per process."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from broker.cases.clocks import ReferenceClock, load_clocks
from broker.core.context import CallContext
from broker.core.settings import ConfigurationError, Settings
from broker.messages import ReviewTerms
from broker.policy.service import NodePolicy


@dataclass(frozen=True, slots=True)
class CaseConfig:
    clocks: tuple[ReferenceClock, ...]
    retention: dt.timedelta
    urgent_escalation: dt.timedelta
    evidence_dir: Path
    evidence_max_bytes: int
    max_filters: int
    review: ReviewTerms

    @classmethod
    def from_settings(cls, settings: Settings) -> CaseConfig:
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
        )


CaseContext = CallContext[NodePolicy | None, CaseConfig]
"""The context a case service takes: node, caller, policy, case configuration, now."""
