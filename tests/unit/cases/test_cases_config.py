"""What the case workflows take from settings, and their task on the beat schedule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from broker.cases.config import CaseConfig
from broker.core.settings import ConfigurationError, Settings


def test_settings_configure_clocks_retention_and_evidence(tmp_path: Path) -> None:
    clocks = tmp_path / "clocks.yaml"
    clocks.write_text(
        "clocks:\n  police-977:\n    title: Directive 2023/977\n    workflows: [mla.request]\n"
        "    legal_bases: [eu-2023-977]\n    milestones:\n"
        "      - {name: reply, starts_on: [transmit], stops_on: [complete], days: 7}\n"
    )
    config = CaseConfig.from_settings(
        Settings(
            data_dir=tmp_path,
            case_clocks_file=clocks,
            case_retention_days=30,
            urgent_confirmation_hours=8,
        )
    )
    assert [c.id for c in config.clocks] == ["police-977"]
    assert config.retention == dt.timedelta(days=30)
    assert config.urgent_escalation == dt.timedelta(hours=8)
    assert config.evidence_dir == tmp_path / "evidence"
    default = CaseConfig.from_settings(Settings(data_dir=tmp_path))
    assert [c.id for c in default.clocks] == [
        "eu-eio",
        "egmont",
        "eu-2023-977-urgent-direct",
        "eu-2023-977-urgent-indirect",
        "eu-2023-977",
    ]
    clocks.write_text("clocks: {broken: {title: x}}\n")
    with pytest.raises(ConfigurationError, match="PALERMO_CASE_CLOCKS_FILE"):
        CaseConfig.from_settings(Settings(data_dir=tmp_path, case_clocks_file=clocks))


def test_the_clock_task_is_registered_and_scheduled() -> None:
    import broker.cases.tasks  # noqa: F401 - registers the task
    from broker.worker import celery_app

    assert "palermo.cases.tick" in celery_app.tasks
    entry = celery_app.conf.beat_schedule["case-clocks"]
    assert entry["task"] == "palermo.cases.tick"
    assert "broker.cases.tasks" in celery_app.conf.include
