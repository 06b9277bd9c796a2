"""Every domain's tables, imported from one place.

Alembic's ``env.py`` and the schema drift check (``make db-check``) load the metadata from here,
so an autogenerate sees the whole schema. A new domain with tables adds its ``models`` here.
"""

from __future__ import annotations

from broker.accounts import models as accounts
from broker.cases import models as cases
from broker.consents import models as consents
from broker.core.db import Base
from broker.delivery import models as delivery
from broker.federation import models as federation
from broker.fiu import models as fiu
from broker.messages import models as messages
from broker.oversight import models as oversight
from broker.participants import models as participants
from broker.web import models as web

DOMAIN_MODELS = (
    accounts,
    cases,
    consents,
    delivery,
    federation,
    fiu,
    messages,
    oversight,
    participants,
    web,
)
metadata = Base.metadata

__all__ = ["DOMAIN_MODELS", "metadata"]
