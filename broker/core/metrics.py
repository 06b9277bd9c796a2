"""Counters of events that happen in the api process, incremented where they happen; the
node's state (outbox, audit log, cases, delivery attempts) is read from the database at
scrape time by ``broker.metrics``. Every name here is exported on ``/metrics``.

A counter counts what this process saw since it started (Prometheus' ``rate()`` and
``increase()`` absorb restarts); sum them over the api replicas.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

LOGIN_FAILURES = Counter(
    "palermo_login_failures",
    "Failed logins (API password and client credentials, web sign-in)",
)
LOGIN_LOCKOUTS = Counter(
    "palermo_login_lockouts",
    "Lockouts started, by what was locked out: a login or a client address",
    ["scope"],
)
POLICY_DENIALS = Counter(
    "palermo_policy_denials",
    "Messages refused by policy, by deny rule (one refusal counts once per rule it cites)",
    ["rule"],
)


def count_policy_denials(rule_ids: Iterable[str]) -> None:
    """One refusal by policy, citing these deny rules."""
    for rule_id in rule_ids:
        POLICY_DENIALS.labels(rule_id).inc()
