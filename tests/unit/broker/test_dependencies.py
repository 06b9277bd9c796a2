"""What a clean install brings: the runtime dependencies the node needs outside the suite.

The suite itself brings some packages (pytest brings ``packaging``), so a missing runtime
dependency can pass every other test and still break a fresh install.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement


def _requirement(dist: str, name: str) -> Requirement:
    for line in metadata.requires(dist) or []:
        req = Requirement(line)
        if req.name == name and req.marker is None:
            return req
    raise AssertionError(f"{dist} does not require {name}")


def test_celery_comes_with_its_redis_transport() -> None:
    # kombu's Redis transport imports ``packaging``, which only the ``redis`` extra brings:
    # without it, worker and beat exit on a Redis broker and /readyz answers 503.
    assert "redis" in _requirement("palermo", "celery").extras
    kombu_redis = [
        Requirement(line).name
        for line in metadata.requires("kombu") or []
        if 'extra == "redis"' in line
    ]
    assert "packaging" in kombu_redis
