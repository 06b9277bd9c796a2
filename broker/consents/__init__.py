"""Consents and forwarding: onward use of received material.

What other domains may call: the routers of ``views`` (mounted by ``broker.app``), and the
names in ``service.__all__`` (requesting, answering and reading consents, and the granted
consents the engine reads) and ``forwarding.__all__`` (``forward``). This package uses
``broker.messages`` only through its public names; ``messages`` imports nothing of it.
"""
