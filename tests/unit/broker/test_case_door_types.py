"""The plain message door refuses every type a case workflow's events travel in (issue 14
item 5): ``broker.messages.CASE_ONLY_TYPES`` is checked against the transition tables, so a
new table whose events travel in a new type cannot leave that type open to plain submission.
``fiu.disclosure`` is the one type a workflow uses that an FIU also sends on its own (a
spontaneous disclosure: goAML, the compose form; FATF R.40)."""

from __future__ import annotations

from broker.cases.tables import WORKFLOWS
from broker.messages import CASE_ONLY_TYPES

ALSO_SENT_ON_ITS_OWN = frozenset({"fiu.disclosure"})


def test_every_type_a_workflow_uses_is_case_only_or_named_as_sent_on_its_own() -> None:
    used = {
        wf.message_type(t, case_type)
        for wf in WORKFLOWS.values()
        for t in wf.transitions
        for case_type in wf.case_types
    }
    assert used - ALSO_SENT_ON_ITS_OWN <= CASE_ONLY_TYPES, sorted(used - CASE_ONLY_TYPES)
    assert used >= ALSO_SENT_ON_ITS_OWN
    assert not ALSO_SENT_ON_ITS_OWN & CASE_ONLY_TYPES


def test_the_event_types_of_every_case_type_are_case_only() -> None:
    defaults = {t for wf in WORKFLOWS.values() for t in wf.message_types.values()}
    assert defaults <= CASE_ONLY_TYPES
    assert {"extradition.event", "jit.event"} <= CASE_ONLY_TYPES
