from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class RuleRead(BaseModel):
    id: str
    effect: Literal["permit", "deny"]
    title: str
    citation: str


class PackRead(BaseModel):
    name: str
    title: str
    hash: str = Field(description="sha256 of the pack's canonical content: its version")
    origin: Literal["shipped", "deployment"]
    rules: list[RuleRead]


class PolicyRead(BaseModel):
    policy_pack: str = Field(description="the policy set hash every decision records")
    reference_data: str = Field(description="hash of the jurisdictions, groups and treaties")
    packs: list[PackRead]


class ExplainRead(BaseModel):
    context: dict[str, Any] = Field(description="the context as evaluated, defaults filled in")
    decision: dict[str, Any]
    rules_evaluated: int
    rules: list[dict[str, Any]] = Field(
        description="every rule whose condition held: its trace, and whether unless excused it"
    )
