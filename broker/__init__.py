"""Palermo: a secure broker for inter-agency information exchange and mutual legal assistance."""
