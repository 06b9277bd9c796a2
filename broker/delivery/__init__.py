"""Delivery: the outbox relay, the adapters' pipeline, receipts from push adapters and
federation with peer nodes.

What other domains and entry points may call: the router of ``views``, the Celery tasks of
``tasks``, and the names in ``service.__all__`` (claiming and completing deliveries, dead
letters, adapter configuration), ``pipeline.__all__`` and ``federation.__all__``. Its tables
are defined in ``broker.messages.models`` (``models`` names them); it uses ``broker.messages``
only through its public names, and ``messages`` imports nothing of it.
"""
