"""Properties of the engine over generated contexts and generated rules (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.contexts import context_from_dict, context_to_dict
from policies.engine import DEFAULT_DENY, PolicySet, default_policy, evaluate, load_policy
from policies.model import Context
from policies.packs import pack_from_mapping
from tests.unit.policies.strategies import conditions, contexts, single_rule_pack

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_rule(effect: str, when: dict[str, Any]) -> PolicySet:
    extra = pack_from_mapping(single_rule_pack("ZZ.generated", effect, when))
    return PolicySet([*default_policy().packs, extra])


@SETTINGS
@given(contexts(), conditions)
def test_adding_a_deny_rule_never_turns_a_deny_into_a_permit(
    ctx: Context, when: dict[str, Any]
) -> None:
    before = evaluate(ctx)
    after = evaluate(ctx, with_rule("deny", when))
    if not before.permitted:
        assert not after.permitted
        # the earlier reasons stand; the new rule can only add itself
        extra = () if before.reasons == (DEFAULT_DENY,) else before.reasons
        assert after.reasons[: len(extra)] == extra
    fired = "ZZ.generated" in after.matched
    assert after.permitted == (before.permitted and not fired)


@SETTINGS
@given(contexts(), conditions)
def test_adding_a_permit_rule_never_lifts_a_deny_rule(ctx: Context, when: dict[str, Any]) -> None:
    before = evaluate(ctx)
    after = evaluate(ctx, with_rule("permit", when))
    if before.reasons != (DEFAULT_DENY,) and not before.permitted:
        assert after.reasons == before.reasons


@SETTINGS
@given(contexts())
def test_the_same_context_gives_the_same_decision(ctx: Context) -> None:
    first = evaluate(ctx)
    assert evaluate(ctx) == first
    rebuilt = context_from_dict(context_to_dict(ctx))
    assert rebuilt == ctx
    assert evaluate(rebuilt) == first


def test_a_fresh_load_gives_the_same_hash_and_decisions() -> None:
    fresh = load_policy()
    assert fresh is not default_policy()
    assert fresh.hash == default_policy().hash

    @SETTINGS
    @given(contexts())
    def same(ctx: Context) -> None:
        assert evaluate(ctx, fresh) == evaluate(ctx)

    same()


@SETTINGS
@given(contexts())
def test_decision_shape(ctx: Context) -> None:
    decision = evaluate(ctx)
    policy = default_policy()
    assert decision.pack_hash == policy.hash
    assert decision.reasons, "every decision carries at least one reason"
    # matched is exactly the rules that apply, in evaluation order (the index skips nothing)
    assert decision.matched == tuple(r.id for r in policy.rules if r.applies(ctx))
    deny_ids = [rid for rid in decision.matched if policy.rule(rid).effect == "deny"]
    permit_ids = [rid for rid in decision.matched if policy.rule(rid).effect == "permit"]
    reason_ids = [r.rule_id for r in decision.reasons]
    if deny_ids:
        assert decision.effect == "deny"
        assert reason_ids == deny_ids
    elif permit_ids:
        assert decision.effect == "permit"
        assert reason_ids == permit_ids
    else:
        assert decision.reasons == (DEFAULT_DENY,)
    deciding = set(reason_ids)
    assert all(o.rule_id in deciding for o in decision.obligations)


@SETTINGS
@given(contexts(), st.data())
def test_an_inactive_party_is_always_refused(ctx: Context, data: st.DataObject) -> None:
    import dataclasses

    side = data.draw(st.sampled_from(["sender", "recipient"]))
    party = dataclasses.replace(getattr(ctx, side), active=False)
    decision = evaluate(dataclasses.replace(ctx, **{side: party}))
    assert not decision.permitted
    assert f"baseline.{side}-inactive" in [r.rule_id for r in decision.reasons]
