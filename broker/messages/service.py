"""The names ``broker.cases`` calls as ``messages.<name>``, kept while that package moves to
``broker.messages``' public surface (``broker/messages/__init__.py``); nothing else imports
this module. The services themselves live in ``ingress``, ``reading`` and ``receipts``.
"""

from broker.messages.ingress import Accepted, Refused, accept, submit
from broker.messages.signing import verified_submission

__all__ = ["Accepted", "Refused", "accept", "submit", "verified_submission"]
