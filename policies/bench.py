"""Decision throughput, for the project's bench harness (never asserted by unit tests).

``run(n)`` evaluates ``n`` decisions on one core, cycling through the contexts of every
shipped pack test case (a mix of permits and denies across all packs), and reports the rate
by wall clock and by CPU time of this process (the second is steadier on a busy machine).
The policy set is loaded before timing starts, so the figures are evaluation only.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from policies.engine import PolicySet, default_policy, evaluate


def run(n: int = 100_000, policy: PolicySet | None = None) -> dict[str, Any]:
    """Evaluate ``n`` decisions, write one summary line to stdout, return the figures.

    Raises:
        ValueError: ``n`` is not positive, or the policy set carries no test contexts.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    policy = policy if policy is not None else default_policy()
    contexts = [test.context for pack in policy.packs for test in pack.tests]
    if not contexts:
        raise ValueError("the policy set has no test contexts to evaluate")
    batch = list(itertools.islice(itertools.cycle(contexts), n))
    permits = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for ctx in batch:
        permits += evaluate(ctx, policy).permitted
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    figures = {
        "decisions": n,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "decisions_per_second": n / seconds if seconds > 0 else float("inf"),
        "decisions_per_cpu_second": n / cpu_seconds if cpu_seconds > 0 else float("inf"),
        "rules": len(policy.rules),
        "packs": len(policy.packs),
        "distinct_contexts": len(contexts),
        "permits": permits,
        "pack_hash": policy.hash,
    }
    sys.stdout.write(
        f"policies: {figures['decisions_per_second']:,.0f} decisions/s "
        f"({figures['decisions_per_cpu_second']:,.0f} per CPU second; {n} decisions, "
        f"{len(policy.rules)} rules in {len(policy.packs)} packs, {seconds:.3f} s)\n"
    )
    return figures
