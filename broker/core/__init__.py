"""The bottom layer: settings, database, crypto, tokens, logging, errors. Imports nothing else
from the repository (an import-linter contract holds this)."""
