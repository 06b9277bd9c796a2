"""Policy decisions per second on one core, with every shipped pack loaded (issue 4, item 8:
the goal is over 20,000, so that policy is never the bottleneck of ingress).

    .venv/bin/python -m bench.policy [--decisions 200000] [--rounds 3] [--cpu 0] [--json]

Three measurements, each the best of ``--rounds`` runs, the process pinned to one CPU:
1. ``engine``: ``policies.bench.run`` -- ``evaluate`` alone, cycling through the contexts of
   every shipped pack test case (a mix of permits and denies over all packs);
2. ``broker``: what ingress does per message -- ``broker.messages.policy.decide`` on parsed
   payloads: build the ``Context`` from the payload's metadata and the parties, add the
   reference data (groups, treaties, languages, flags), evaluate;
3. ``forward``: the same for forwards, with the original's terms and consents on record.

The policy set is loaded before timing starts. Figures are wall-clock and CPU-time rates of
this process; the second is steadier on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from broker.core.ids import uuid7
from broker.envelopes.schemas import MessagePayload
from broker.messages.policy import PartyFacts, Terms, decide
from broker.policy.service import NodePolicy, shipped_policy
from policies import bench as engine_bench
from policies.model import Consent

PARTIES = {
    pid: PartyFacts(pid, kind, pid[:2].upper(), True)
    for pid, kind in [
        ("de.bka", "police"),
        ("it.central-authority", "central_authority"),
        ("nl.fiu", "fiu"),
        ("it.fiu", "fiu"),
        ("us.central-authority", "central_authority"),
        ("it.guardia-di-finanza", "police"),
    ]
}


def _payload(sender: str, recipient: str, **fields: Any) -> MessagePayload:
    base: dict[str, Any] = {
        "id": str(uuid7()),
        "type": "intel.message",
        "sender": sender,
        "recipient": recipient,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "legal_basis": "UNTOC art. 27",
        "purpose": "investigation RG 1234/2026",
        "data_categories": ["vessel-movement"],
        "handling": {"code": "H0"},
        "evaluation": "B2",
        "statement_kind": "fact",
        "body": {"summary": "not read by the policy"},
    }
    base.update(fields)
    return MessagePayload.model_validate(base)


def ingress_mix() -> list[tuple[MessagePayload, PartyFacts, PartyFacts, dict[str, Any]]]:
    """Messages as ingress sees them: intelligence, FIU traffic, MLA, a transfer outside the
    LED area, and refusals (no purpose, a bad handling code)."""
    cases = [
        _payload("de.bka", "it.central-authority"),
        _payload("de.bka", "it.central-authority", handling={"code": "H3", "restriction": "x"}),
        _payload(
            "nl.fiu",
            "it.fiu",
            type="fiu.disclosure",
            legal_basis="Egmont Principles",
            purpose="money laundering analysis",
            data_subjects=[{"ref": "p1", "category": "suspect"}],
            data_categories=["personal", "financial"],
        ),
        _payload(
            "it.fiu",
            "nl.fiu",
            type="fiu.match",
            data_categories=["keyed_filter"],
            handling=None,
            evaluation=None,
            statement_kind=None,
        ),
        _payload(
            "it.central-authority",
            "us.central-authority",
            type="mla.request",
            language="en",
            transfer_basis="appropriate_safeguards",
        ),
        _payload("de.bka", "us.central-authority"),  # P16.basis: refused
        _payload("de.bka", "it.central-authority", purpose=None),  # refused
    ]
    return [(p, PARTIES[p.sender], PARTIES[p.recipient], {}) for p in cases]


def forward_mix() -> list[tuple[MessagePayload, PartyFacts, PartyFacts, dict[str, Any]]]:
    """Forwards decided against the original's terms: permitted, purpose-locked, H2, FIU."""
    original = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10"
    bka = Terms(
        root_message_id=original,
        provider_id="de.bka",
        original_purpose="investigation RG 1234/2026",
        permitted_recipients=frozenset({"it.central-authority", "nl.fiu"}),
        permitted_purposes=frozenset({"investigation RG 1234/2026"}),
        handling_code="H2",
        restrictions=("do not contact the subject",),
    )
    fiu = Terms(
        root_message_id=original,
        provider_id="nl.fiu",
        original_purpose="money laundering analysis",
        permitted_recipients=frozenset({"it.fiu"}),
        permitted_purposes=frozenset({"money laundering analysis"}),
        handling_code=None,
    )
    consent = (Consent("nl.fiu", "it.guardia-di-finanza", "money laundering analysis"),)
    common = {"forwarded_from": original, "restrictions": ["do not contact the subject"]}
    h2 = {"handling": {"code": "H2"}, **common}
    fiu_use = {"purpose": "money laundering analysis", "forwarded_from": original}
    cases = [
        (_payload("it.central-authority", "nl.fiu", **h2), bka, "police", ()),
        (_payload("it.central-authority", "nl.fiu", purpose="tax", **h2), bka, "police", ()),
        (_payload("it.central-authority", "it.guardia-di-finanza", **h2), bka, "police", ()),
        (_payload("it.fiu", "it.guardia-di-finanza", **fiu_use), fiu, "fiu", consent),
        (_payload("it.fiu", "it.guardia-di-finanza", **fiu_use), fiu, "fiu", ()),
    ]
    out = []
    for payload, terms, kind, consents in cases:
        known = {"forwarding": terms.forwarding(kind), "consents": consents}
        out.append((payload, PARTIES[payload.sender], PARTIES[payload.recipient], known))
    return out


def measure(
    decisions: int,
    cases: list[tuple[MessagePayload, PartyFacts, PartyFacts, dict[str, Any]]],
    policy: NodePolicy,
) -> dict[str, Any]:
    batch = list(itertools.islice(itertools.cycle(cases), decisions))
    permits = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for payload, sender, recipient, known in batch:
        permits += decide(payload, sender, recipient, policy=policy, **known).permitted
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "decisions": decisions,
        "seconds": seconds,
        "decisions_per_second": decisions / seconds,
        "decisions_per_cpu_second": decisions / cpu if cpu > 0 else float("inf"),
        "permits": permits,
        "distinct_messages": len(cases),
    }


def engine(decisions: int, policy: NodePolicy) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):  # run() prints its own summary line
        figures: dict[str, Any] = engine_bench.run(decisions, policy.policy)
    return figures


def best(rounds: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return max((run() for _ in range(rounds)), key=lambda f: f["decisions_per_cpu_second"])


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.policy", description=doc)
    parser.add_argument("--decisions", type=int, default=200_000, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin to (-1: do not)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    policy = shipped_policy()
    warm = max(1000, args.decisions // 20)
    measure(warm, ingress_mix(), policy)  # warm the rule index and the reference lookups
    measure(warm, forward_mix(), policy)
    results = {
        "engine": best(args.rounds, lambda: engine(args.decisions, policy)),
        "broker": best(args.rounds, lambda: measure(args.decisions, ingress_mix(), policy)),
        "forward": best(args.rounds, lambda: measure(args.decisions, forward_mix(), policy)),
    }
    meta = {
        "packs": len(policy.policy.packs),
        "rules": len(policy.policy),
        "policy_pack": policy.hash,
        "python": sys.version.split()[0],
        "cpu": args.cpu,
    }
    if args.json:
        print(json.dumps({"meta": meta, **results}, indent=2))
        return 0
    print(
        f"policy bench: {meta['packs']} packs, {meta['rules']} rules, {meta['policy_pack']}, "
        f"one core (cpu {args.cpu}), best of {args.rounds} x {args.decisions:,} decisions"
    )
    for name, what in [
        ("engine", "evaluate() on the packs' test contexts"),
        ("broker", "decide(): context from payload metadata + reference data + evaluate"),
        ("forward", "decide() of forwards: original's terms and consents on record"),
    ]:
        f = results[name]
        print(
            f"  {name:8} {f['decisions_per_second']:>10,.0f} decisions/s "
            f"({f['decisions_per_cpu_second']:,.0f} per CPU second)  {what}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
