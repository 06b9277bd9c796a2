"""The transition tables: MLA request (UNTOC art. 18), FIU request, FIU spontaneous
disclosure, consent, feedback, extradition request (art. 16), joint investigation team
(art. 19). ``domain/MLA.md`` and ``domain/FIU.md`` are their source.

Event names are those of ``policies.vocabulary.CASE_EVENTS`` (the packs match on them); two
side events the packs do not look at are this module's own: ``record_assurance`` (P22) and
the node's ``expire_retention`` is the vocabulary's. Everything else about a workflow (the
API's allowed next events, the diagrams, docs/workflows.md) is derived from these rows.

One module a family of tables: ``mla``, ``fiu`` (request and spontaneous disclosure),
``threads`` (consent, feedback), ``extradition`` and ``jit``, with what they share in
``parts``. A row whose event is a variant of a vocabulary event names it as its
``policy_event`` (``refuse_national`` is decided as ``refuse``). A new workflow is a new
table and its entry in ``WORKFLOWS``, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from broker.cases.tables.extradition import EXTRADITION
from broker.cases.tables.fiu import DISCLOSURE, FIU_REQUEST
from broker.cases.tables.intel import INTEL_REQUEST
from broker.cases.tables.jit import JIT
from broker.cases.tables.mla import CONSULTATION_RECORDS, MLA
from broker.cases.tables.threads import CONSENT, FEEDBACK
from broker.cases.workflow import HANDLERS, Workflow

WORKFLOWS: Mapping[str, Workflow] = MappingProxyType(
    {
        w.name: w
        for w in (MLA, FIU_REQUEST, DISCLOSURE, CONSENT, FEEDBACK, EXTRADITION, JIT, INTEL_REQUEST)
    }
)
ROOT_WORKFLOWS = frozenset(w.name for w in WORKFLOWS.values() if not w.parents)
CHILD_WORKFLOWS = frozenset(w.name for w in WORKFLOWS.values() if w.parents)

__all__ = [
    "CHILD_WORKFLOWS",
    "CONSENT",
    "CONSULTATION_RECORDS",
    "DISCLOSURE",
    "EXTRADITION",
    "FEEDBACK",
    "FIU_REQUEST",
    "HANDLERS",
    "INTEL_REQUEST",
    "JIT",
    "MLA",
    "ROOT_WORKFLOWS",
    "WORKFLOWS",
]
