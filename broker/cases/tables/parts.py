"""What every table uses: the sides by short name, the role set of the node's own events, and
the final states a request's content is retained in until its retention expires."""

from __future__ import annotations

from broker.cases.workflow import Side

REQ, RQD, SYS = Side.REQUESTING, Side.REQUESTED, Side.SYSTEM
NODE = frozenset({"system"})
RETAINED = ("CLOSED", "REFUSED", "WITHDRAWN")
