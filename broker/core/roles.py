"""The roles an account holds, and the named sets of them that routes and rules check.

Defined once here; ``broker.http``'s role dependencies, the accounts service (which roles a
person or a system may hold), the case workflows and the web app all read these names.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    OVERSIGHT = "oversight"
    ADMIN = "admin"
    SYSTEM = "system"


#: People who handle cases and messages for their participant.
PEOPLE = frozenset({Role.OFFICER, Role.SUPERVISOR})
#: Whoever handles messages and cases: the people, and the participant's own systems.
HANDLERS = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.SYSTEM})
#: Who approves (four eyes).
SUPERVISORS = frozenset({Role.SUPERVISOR})
#: The node's own systems.
SYSTEMS = frozenset({Role.SYSTEM})
#: Who reads the audit log: oversight bodies (every entry) and handlers (their own).
AUDIT_READERS = HANDLERS | {Role.OVERSIGHT}
#: Roles a person account may hold, and those a system account may hold.
PERSON_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.OVERSIGHT, Role.ADMIN})
SYSTEM_ROLES = SYSTEMS
