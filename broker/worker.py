"""The Celery application: the ``worker`` and ``beat`` process kinds.

Tasks take ids, never ORM objects; they run ``acks_late`` with explicit retry limits. The
``task`` helper below is the only way tasks are declared, so a misspelt option fails at
import instead of being ignored. Each worker process keeps one event loop and one database
engine, made after fork.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from celery import Celery
from celery.signals import worker_process_shutdown

from broker.core.context import NodeContext, node_context
from broker.core.db import Database
from broker.core.logging import configure_logging
from broker.core.settings import Settings
from broker.policy.service import NodePolicy, node_policy

P = ParamSpec("P")
R = TypeVar("R")


def make_celery(settings: Settings) -> Celery:
    app = Celery(
        "palermo", broker=settings.resolved_broker_url, backend=settings.resolved_result_backend
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "relay-outbox": {
                "task": "palermo.delivery.relay",
                "schedule": settings.relay_interval_seconds,
                "options": {"expires": max(settings.relay_interval_seconds * 5, 5.0)},
            },
            "sequence-audit-log": {
                "task": "palermo.oversight.sequence",
                "schedule": settings.checkpoint_interval_seconds,
                "options": {"expires": max(settings.checkpoint_interval_seconds * 5, 5.0)},
            },
            "case-clocks": {
                "task": "palermo.cases.tick",
                "schedule": settings.case_tick_seconds,
                "options": {"expires": max(settings.case_tick_seconds * 2, 5.0)},
            },
        },
        include=["broker.delivery.tasks", "broker.oversight.tasks", "broker.cases.tasks"],
    )
    if settings.filedrop_import_dir is not None:
        app.conf.beat_schedule["import-filedrop"] = {
            "task": "palermo.delivery.filedrop_import",
            "schedule": settings.filedrop_import_interval_seconds,
            "options": {"expires": settings.filedrop_import_interval_seconds * 2},
        }
    return app


settings = Settings()
celery_app = make_celery(settings)


class _Runtime:
    """Per-process state of a worker: its loop, database and node context."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.db: Database | None = None
        self.node: NodeContext | None = None
        self.policy: NodePolicy | None = None

    def run(self, fn: Callable[[Database, NodeContext], Coroutine[Any, Any, R]]) -> R:
        if self.loop is None:
            configure_logging(settings.log_level, json=settings.log_json)
            self.loop = asyncio.new_event_loop()
        if self.db is None:
            self.db = Database(settings.resolved_database_url, pool_size=2)
            self.node = node_context(settings)
            self.policy = node_policy(settings)  # the packs PALERMO_POLICY_* configure
        assert self.node is not None
        return self.loop.run_until_complete(fn(self.db, self.node))

    def close(self) -> None:
        if self.loop is not None and self.db is not None:
            self.loop.run_until_complete(self.db.dispose())
        self.db = None


runtime = _Runtime()


def _close(**_: Any) -> None:
    runtime.close()


worker_process_shutdown.connect(_close)


def task(
    *, name: str, max_retries: int, acks_late: bool = True, default_retry_delay: float = 1.0
) -> Callable[[Callable[P, R]], Any]:
    """Declare a Celery task with the project's required options, all keyword-only."""

    def decorator(fn: Callable[P, R]) -> Any:
        return celery_app.task(
            name=name,
            bind=False,
            acks_late=acks_late,
            max_retries=max_retries,
            default_retry_delay=default_retry_delay,
        )(fn)

    return decorator
