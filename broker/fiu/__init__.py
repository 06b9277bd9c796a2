"""Anonymous matching between FIUs.

What other domains may call: the router of ``views`` and the names in ``service.__all__``.
It sends its messages through ``broker.messages.sign_and_accept``.
"""
