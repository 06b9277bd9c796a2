"""Palermo's data-protection policy engine: a pure library.

``evaluate(context)`` decides one exchange against the rule packs shipped in
``policies/packs/`` (or a ``PolicySet`` loaded with ``load_policy``) and returns a
``Decision``: permit or deny, reasons with citations, obligations, and the packs' hash.

Invariants: deny overrides; no matching permit (and so an empty policy set) denies; the same
context and policy set always give an equal decision; rules read only ``Context`` fields,
never message content. This package imports nothing from ``broker``, ``audit`` or
``adapters``; it reads only its own pack and reference-data files.
"""

from policies.contexts import ContextError, context_from_dict, context_to_dict
from policies.engine import DEFAULT_DENY, PolicySet, default_policy, evaluate, load_policy
from policies.model import (
    Consent,
    Context,
    Decision,
    Forwarding,
    Obligation,
    Party,
    Reason,
)
from policies.packs import Pack, PackError, Problem, load_pack, pack_from_mapping
from policies.reference import (
    ReferenceData,
    ReferenceDataError,
    channels_for,
    groups_for,
    is_flagged,
    jurisdiction_of,
    languages_for,
    load_reference_data,
    make_party,
    treaties_between,
    with_reference_data,
)

__all__ = [
    "DEFAULT_DENY",
    "Consent",
    "Context",
    "ContextError",
    "Decision",
    "Forwarding",
    "Obligation",
    "Pack",
    "PackError",
    "Party",
    "PolicySet",
    "Problem",
    "Reason",
    "ReferenceData",
    "ReferenceDataError",
    "channels_for",
    "context_from_dict",
    "context_to_dict",
    "default_policy",
    "evaluate",
    "groups_for",
    "is_flagged",
    "jurisdiction_of",
    "languages_for",
    "load_pack",
    "load_policy",
    "load_reference_data",
    "make_party",
    "pack_from_mapping",
    "treaties_between",
    "with_reference_data",
]
