"""Mermaid state diagrams, derived from the transition tables (never drawn by hand).

``mermaid(workflow, current=...)`` renders a ``stateDiagram-v2``: one edge per (source, event)
labelled with the event and the side that fires it (``either`` party for an exchange of a
joint investigation team; and one back to where a consultation began, for an event that ends
it there), ``[*]`` for the start and after final
states, side events (which leave the state alone) in a note, and the case's current state
highlighted when given.
"""

from __future__ import annotations

from broker.cases.workflow import START, Side, Workflow

_SIDE_MARK = {Side.REQUESTING: "requesting", Side.REQUESTED: "requested", Side.SYSTEM: "node"}


def mermaid(workflow: Workflow, *, current: str | None = None) -> str:
    lines = ["stateDiagram-v2"]
    if workflow.initial != START:
        lines.append(f"    [*] --> {workflow.initial}")
    side_events: dict[str, list[str]] = {}
    for t in workflow.transitions:
        mark = "either" if t.either_side else _SIDE_MARK[t.side]
        if t.target is None:
            marks = side_events.setdefault(t.event, [])
            if mark not in marks:
                marks.append(mark)
            continue
        for source in t.sources:
            lines.append(f"    {source} --> {t.target} : {t.event} ({mark})")
            for origin in sorted(t.returns_to_origin):
                lines.append(
                    f"    {source} --> {origin} : {t.event} ({mark}, "
                    "back where the consultation began)"
                )
    for state in workflow.states:
        leaving = [
            t for t in workflow.from_state(state) if t.target is not None and t.target != state
        ]
        if state in workflow.finals and not leaving:
            lines.append(f"    {state} --> [*]")
    if side_events:
        anchor = next(
            (
                s
                for s in workflow.states
                if any(s in t.sources for t in workflow.transitions if t.target is None)
            ),
            workflow.states[0],
        )
        names = ", ".join(f"{e} ({'/'.join(sides)})" for e, sides in side_events.items())
        lines.append(f"    note right of {anchor}")
        lines.append(f"        side events, state unchanged: {names}")
        lines.append("    end note")
    for state, note in workflow.state_notes.items():
        lines.append(f"    note left of {state} : {note}")
    if current is not None and current in workflow.states:
        lines.append("    classDef current fill:#fde68a,stroke:#b45309,stroke-width:2px")
        lines.append(f"    class {current} current")
    return "\n".join(lines) + "\n"
