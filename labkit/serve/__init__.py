"""`labkit serve`: an HTTP API, health check, Prometheus metrics and a live page over a labkit home.

`create_app(home, config)` builds the Starlette application; `labkit.serve.server.serve` runs it
on uvicorn. docs/serve.md describes the routes and the security model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.serve.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Importing labkit.serve loads no web framework until the application is asked for.
    if name == "create_app":
        from labkit.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'labkit.serve' has no attribute {name!r}")
