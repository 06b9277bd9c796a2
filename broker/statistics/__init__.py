"""Oversight's monitoring indicators across domains (cases, messages, consents, delivery,
policy refusals), from metadata only: ``service.statistics`` computes them with SQL GROUP BY
queries under one ``StatisticsFilter``; the API (``views``) and the web app's statistics
page read the same figures, with the same small-count suppression.

A package of its own because it reads every domain's tables: placed above them, it keeps
the domains free of import cycles (``broker.consents`` already imports ``broker.cases``).
"""

from broker.statistics.service import (
    BadStatisticsFilter,
    StatisticsFilter,
    parse_filter,
    statistics,
)

__all__ = ["BadStatisticsFilter", "StatisticsFilter", "parse_filter", "statistics"]
