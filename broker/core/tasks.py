"""How a domain declares its Celery tasks, without importing the worker process module.

``task`` is the only way tasks are declared: every option is keyword-only, so a misspelt one
fails at import instead of being ignored. Tasks are Celery *shared* tasks: they attach to the
application the process makes (``broker.worker.celery_app``, or a test's own), so a domain's
``tasks`` module depends on ``broker.core`` only and the worker module sits on top of every
domain. While a task runs, its id and name are bound into the structured logs
(``task_id``, ``task_name``), so each line a task writes says which run wrote it.

``runtime`` is a worker process's own state: one event loop and one database engine, made after
fork on first use and closed when the process shuts down (``broker.worker`` connects that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from celery import shared_task
from celery.signals import task_postrun, task_prerun

from broker.core.context import NodeContext, node_context
from broker.core.db import Database
from broker.core.logging import bind_contextvars, configure_logging, unbind_contextvars
from broker.core.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

settings = Settings()


class Runtime:
    """Per-process state of a worker: its loop, database and node context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.db: Database | None = None
        self.node: NodeContext | None = None

    def run(self, fn: Callable[[Database, NodeContext], Coroutine[Any, Any, R]]) -> R:
        """Run one task's coroutine on the process's loop, with its database and node."""
        if self.loop is None:
            configure_logging(self.settings.log_level, json=self.settings.log_json)
            self.loop = asyncio.new_event_loop()
        if self.db is None:
            self.db = Database(self.settings.resolved_database_url, pool_size=2)
            self.node = node_context(self.settings)
        assert self.node is not None
        return self.loop.run_until_complete(fn(self.db, self.node))

    def close(self) -> None:
        if self.loop is not None and self.db is not None:
            self.loop.run_until_complete(self.db.dispose())
        self.db = None


runtime = Runtime(settings)


def task(
    *, name: str, max_retries: int, acks_late: bool = True, default_retry_delay: float = 1.0
) -> Callable[[Callable[P, R]], Any]:
    """Declare a Celery task with the project's required options, all keyword-only."""

    def decorator(fn: Callable[P, R]) -> Any:
        return shared_task(
            name=name,
            bind=False,
            acks_late=acks_late,
            max_retries=max_retries,
            default_retry_delay=default_retry_delay,
        )(fn)

    return decorator


def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))


def _unbind_task(**_: Any) -> None:
    unbind_contextvars("task_id", "task_name")


task_prerun.connect(_bind_task, weak=False)
task_postrun.connect(_unbind_task, weak=False)
