from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from broker.core.errors import SchemaViolation
from broker.http import Admin, CallerDep
from broker.policy.schemas import ExplainRead, PackRead, PolicyRead, RuleRead
from broker.policy.service import NodePolicy
from policies.cli import explain
from policies.contexts import ContextError

router = APIRouter(prefix="/v1", tags=["policy"])


async def get_policy(request: Request) -> NodePolicy:
    policy: NodePolicy = request.app.state.policy
    return policy


PolicyDep = Annotated[NodePolicy, Depends(get_policy)]


@router.get("/policy", response_model=PolicyRead)
async def read_policy(policy: PolicyDep, caller: CallerDep) -> PolicyRead:
    """The packs this node enforces, their hashes, and every rule with its citation."""
    packs = []
    for summary, pack in zip(policy.packs(), policy.policy.packs, strict=True):
        rules = [
            RuleRead(id=r.id, effect=r.effect, title=r.title, citation=r.citation)
            for r in pack.rules
        ]
        packs.append(PackRead(**summary, rules=rules))
    return PolicyRead(policy_pack=policy.hash, reference_data=policy.reference_hash, packs=packs)


@router.post("/policy/explain", response_model=ExplainRead)
async def explain_context(
    policy: PolicyDep,
    caller: Admin,
    context: Annotated[dict[str, Any], Body(description="a context as JSON (policies/RULES.md)")],
) -> ExplainRead:
    """Evaluate a context given as JSON against this node's packs: the decision, and which
    rules matched and why. Nothing is stored."""
    try:
        result = explain(context, policy.policy, policy.reference)
    except ContextError as exc:
        raise SchemaViolation(str(exc), field=exc.field) from exc
    return ExplainRead(**result)
