"""``palermo policy check|test|explain|rules``: the node's rule packs, for an operator or a
legal officer, without a running node or a database.

Every command works on the packs the node would enforce with the current environment (the
shipped packs less ``PALERMO_POLICY_DISABLED``, plus ``PALERMO_POLICY_PATHS``) and its
reference data (``PALERMO_REFERENCE_DATA_DIR``). Exit codes: 0 fine, 1 a pack problem, a
failing pack test or a malformed context, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from broker.cli.admin import CommandError
from broker.core.settings import ConfigurationError, Settings
from broker.policy.service import NodePolicy, node_policy, pack_hash, pack_paths
from policies.cli import check, explain, format_results, run_tests
from policies.contexts import ContextError
from policies.reference import ReferenceDataError, load_reference_data


def _node_policy(settings: Settings) -> NodePolicy:
    try:
        return node_policy(settings)
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def cmd_check(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        paths: list[str | Path] = [*pack_paths(settings), *args.paths]
        reference = load_reference_data(settings.reference_data_dir)
    except (ConfigurationError, ReferenceDataError) as exc:
        raise CommandError(str(exc)) from exc
    problems = check(paths, reference)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    if args.paths:
        print(f"ok: the node's packs and {len(args.paths)} more path(s) load together")
        return 0
    policy = _node_policy(settings)
    for summary in policy.packs():
        print(f"{summary['name']:18} {summary['origin']:10} {summary['hash']}")
    print(f"ok: {len(policy.policy.packs)} packs, {len(policy.policy)} rules, {policy.hash}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    results = run_tests(_node_policy(Settings()).policy)
    print(format_results(results))
    return 0 if all(r.passed for r in results) else 1


def _read_context(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{source}: cannot read: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{source}: not valid JSON: {exc}") from exc


def _trace_lines(step: dict[str, Any], depth: int) -> list[str]:
    mark = "yes" if step["result"] else "no "
    lines = [f"{'  ' * depth}[{mark}] {step['test']}"]
    for child in step.get("children", ()):
        lines.extend(_trace_lines(child, depth + 1))
    return lines


def format_explanation(result: dict[str, Any]) -> str:
    """A readable account of ``policies.cli.explain``'s result."""
    decision = result["decision"]
    lines = [f"decision: {decision['effect']}  ({decision['pack_hash']})", "reasons:"]
    lines += [f"  {r['rule_id']}: {r['text']} [{r['citation']}]" for r in decision["reasons"]]
    if decision["obligations"]:
        lines.append("obligations:")
        lines += [f"  {o['kind']}: {o['value']} ({o['rule_id']})" for o in decision["obligations"]]
    lines.append(
        f"rules whose condition held ({len(result['rules'])} of {result['rules_evaluated']}):"
    )
    for rule in result["rules"]:
        status = "matched" if rule["matched"] else "excused by unless"
        lines.append(f"- {rule['id']} ({rule['effect']}, {status}) [{rule['citation']}]")
        lines.append(f"  {rule['title']}")
        lines += _trace_lines(rule["when"], 2)
        if rule["unless"] is not None:
            lines.append("    unless:")
            lines += _trace_lines(rule["unless"], 3)
    return "\n".join(lines)


def cmd_explain(args: argparse.Namespace) -> int:
    context = _read_context(args.context)
    policy = _node_policy(Settings())
    if not isinstance(context, dict):
        print(f"{args.context}: a context is a JSON object", file=sys.stderr)
        return 1
    try:
        result = explain(context, policy.policy, policy.reference)
    except ContextError as exc:
        print(f"{args.context}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else format_explanation(result))
    return 0


def rules_table(policy: NodePolicy) -> str:
    """Every rule of the policy as a Markdown table: pack, id, effect, sentence, citation."""
    lines = [
        "| pack | rule | effect | what it says | citation |",
        "|---|---|---|---|---|",
    ]
    for pack in policy.policy.packs:
        for rule in pack.rules:
            title = " ".join(rule.title.split()).replace("|", "\\|")
            lines.append(
                f"| {pack.name} | `{rule.id}` | {rule.effect} | {title} | {rule.citation} |"
            )
    return "\n".join(lines)


def cmd_rules(args: argparse.Namespace) -> int:
    policy = _node_policy(Settings())
    if args.markdown:
        print(rules_table(policy))
        return 0
    for pack in policy.policy.packs:
        print(f"{pack.name}  {pack_hash(pack)}  {pack.title}")
        for rule in pack.rules:
            print(f"  {rule.id:28} {rule.effect:6} {rule.citation}")
    return 0


def register(sub: Any) -> None:
    pol = sub.add_parser("policy", help="check, test and explain the policy packs")
    psub = pol.add_subparsers(dest="action", required=True)
    p = psub.add_parser("check", help="validate the node's packs (and more pack files given)")
    p.add_argument("paths", nargs="*", type=Path, help="extra pack files or directories")
    p.set_defaults(handler=cmd_check)
    p = psub.add_parser("test", help="run every pack's test cases and print a table")
    p.set_defaults(handler=cmd_test)
    p = psub.add_parser("explain", help="evaluate a context given as JSON, rule by rule")
    p.add_argument("context", nargs="?", default="-", help="a JSON file, or - for stdin")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(handler=cmd_explain)
    p = psub.add_parser("rules", help="list every rule with its citation")
    p.add_argument("--markdown", action="store_true", help="as the table docs/policies.md holds")
    p.set_defaults(handler=cmd_rules)
