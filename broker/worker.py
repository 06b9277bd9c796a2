"""The Celery application: the ``worker`` and ``beat`` process kinds.

Tasks take ids, never ORM objects; they run ``acks_late`` with explicit retry limits. Domains
declare them with ``broker.core.tasks.task`` (shared tasks), so no domain imports this module:
it sits on top, makes the Celery application, lists the task modules and the beat schedule, and
connects the process hooks. Each worker process keeps one event loop and one database engine
(``broker.core.tasks.runtime``), made after fork.
"""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_process_shutdown

from broker.core.logging import configure_logging
from broker.core.settings import ConfigurationError, Settings
from broker.core.tasks import runtime, settings
from broker.policy.service import node_policy


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
        # Celery would swap sys.stdout/stderr for a logger that drops lines written while it
        # logs; the structured handler writes to the real stream instead.
        worker_redirect_stdouts=False,
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
            "federation-directories": {
                "task": "palermo.federation.sync_directories",
                "schedule": settings.federation_directory_interval_seconds,
                "options": {"expires": max(settings.federation_directory_interval_seconds, 5.0)},
            },
            "retention-erase": {
                "task": "palermo.retention.erase",
                "schedule": settings.retention_erase_seconds,
                "options": {"expires": max(settings.retention_erase_seconds * 2, 5.0)},
            },
        },
        include=[
            "broker.delivery.tasks",
            "broker.oversight.tasks",
            "broker.cases.tasks",
            "broker.federation.tasks",
        ],
    )
    if settings.filedrop_import_dir is not None:
        app.conf.beat_schedule["import-filedrop"] = {
            "task": "palermo.delivery.filedrop_import",
            "schedule": settings.filedrop_import_interval_seconds,
            "options": {"expires": settings.filedrop_import_interval_seconds * 2},
        }
    return app


celery_app = make_celery(settings)


def _logging(**_: Any) -> None:
    """setup_logging: the worker and beat log through the project's structured handler (a
    receiver here also keeps Celery from configuring logging its own way)."""
    configure_logging(settings.log_level, json=settings.log_json)


def _close(**_: Any) -> None:
    runtime.close()


def _refuse_bad_policy(**_: Any) -> None:
    """worker_init: a worker does not start on policy packs it cannot load, nor in production
    as a privileged database role (fail closed)."""
    try:
        settings.check_database_role("palermo worker")
        node_policy(settings)  # the packs PALERMO_POLICY_* configure
    except ConfigurationError as exc:
        sys.stderr.write(f"palermo worker: {exc}\n")
        raise SystemExit(2) from exc


setup_logging.connect(_logging)
worker_process_shutdown.connect(_close)
worker_init.connect(_refuse_bad_policy)
