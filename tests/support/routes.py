"""One route table per test process instead of one per application.

FastAPI builds the effective state of every included route (dependency graph, response
fields, request handler) lazily, on the first request each application serves: about
150 ms on this machine for Palermo's routes. The suite makes a new application for almost
every test, so it paid that cost some two thousand times per database run.

The routers are module-level objects included the same way by every ``create_app``, so the
state built for one application serves the next. :func:`share_route_state` memoises
``_EffectiveRouteContext.from_api_route`` by route and path. The one per-application input
it then ignores is ``dependency_overrides_provider``: Palermo uses no dependency overrides,
and ``tests/unit/test_route_state.py`` fails if it ever does. Where the FastAPI in use has no
such hook, nothing is patched and the suite runs at the old speed.
"""

from __future__ import annotations

from typing import Any

import fastapi.routing as fastapi_routing

_shared: dict[tuple[int, str], tuple[Any, Any]] = {}


def share_route_state() -> bool:
    """Patch FastAPI to build each included route's state once per process; True if patched."""
    contexts = getattr(fastapi_routing, "_EffectiveRouteContext", None)
    build = getattr(contexts, "from_api_route", None)
    if contexts is None or build is None or getattr(build, "palermo_shared", False):
        return contexts is not None and getattr(build, "palermo_shared", False)
    original = build.__func__

    def from_api_route(cls: Any, *, original_route: Any, include_context: Any) -> Any:
        key = (id(original_route), include_context.path_for(original_route))
        hit = _shared.get(key)
        if hit is None:
            made = original(cls, original_route=original_route, include_context=include_context)
            # The route is kept with its state, so its id() is never reused for another.
            hit = _shared[key] = (made, original_route)
        return hit[0]

    from_api_route.palermo_shared = True  # type: ignore[attr-defined]
    contexts.from_api_route = classmethod(from_api_route)
    return True


def shared_routes() -> int:
    """How many route states are shared (for the tests of this module)."""
    return len(_shared)
