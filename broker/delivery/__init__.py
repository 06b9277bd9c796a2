"""Delivery: the outbox relay, the adapters' pipeline, receipts from push adapters and
federation with peer nodes.

What other domains and entry points may call: the router of ``views``, the Celery tasks of
``tasks``, and the names in ``service.__all__`` (claiming and completing deliveries, dead
letters, adapter configuration), ``pipeline.__all__`` and ``federation.__all__``. The
services live in ``outbox`` (due rows, leases, the retry policy), ``completion`` (inbox
deliveries, push outcomes, dead-lettering) and ``service`` (dead letters, adapter
configuration), which re-exports the other two. Its tables
are defined in ``broker.messages.models`` (``models`` names them); it uses ``broker.messages``
only through its public names, and ``messages`` imports nothing of it.
"""
