"""Tasks declared through broker.core.tasks: shared tasks with their id and name in the logs."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery

from broker.core.tasks import task

seen: list[dict[str, Any]] = []


@task(name="palermo.test.capture", max_retries=0)
def capture() -> str:
    seen.append(dict(structlog.contextvars.get_contextvars()))
    return "done"


def test_a_task_runs_with_its_id_and_name_bound_and_unbound_after() -> None:
    app = Celery("palermo-test", set_as_current=False)
    app.conf.task_always_eager = True
    seen.clear()
    result = app.tasks["palermo.test.capture"].apply(task_id="t-123")
    assert result.get() == "done"
    assert seen == [{"task_id": "t-123", "task_name": "palermo.test.capture"}]
    assert "task_id" not in structlog.contextvars.get_contextvars()


def test_a_task_attaches_to_any_app_with_the_project_options() -> None:
    app = Celery("palermo-test-2", set_as_current=False)
    declared = app.tasks["palermo.test.capture"]
    assert declared.acks_late is True
    assert declared.max_retries == 0
