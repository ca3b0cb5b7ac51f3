"""The app factory: every page module's routes behind the guard (runner/view/security.py).

A page is a module with ``routes`` (Starlette routes) and, when it belongs in the nav, ``NAV``
(its label and path). A new page is one module and one entry in ``PAGES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from . import compare, item, run, runs, settings, settings_models
from .pages import compile_templates, render
from .security import Guard, Secrets

PAGES: tuple[ModuleType, ...] = (runs, run, item, compare, settings, settings_models)
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ViewState:
    """What every endpoint reads from ``request.app.state.view``."""

    db_path: Path
    db_shown: str  # the database as the user named it
    secrets: Secrets
    nav: tuple[tuple[str, str], ...]  # (label, path) of each page in the nav
    providers_dirs: tuple[str, ...]  # --providers-dir: where the provider files are, besides the usual folders
    # A finished run's per-target figures by (run id, status, finished at): summed once, then read from here.
    figures: dict[tuple[int, str, str | None], list[dict[str, Any]]] = field(default_factory=dict)


def create_app(db_path: Path, secrets: Secrets, db_shown: str | None = None,
               providers_dirs: tuple[str, ...] = ()) -> Starlette:
    """The app over an existing, migrated results database (``open_db`` ran on it)."""
    routes: list[BaseRoute] = [route for page in PAGES for route in page.routes]
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(routes=routes, middleware=[Middleware(Guard, secrets=secrets)],
                    exception_handlers={HTTPException: _error_page})
    nav = tuple(page.NAV for page in PAGES if getattr(page, "NAV", None))
    app.state.view = ViewState(db_path, db_shown or str(db_path), secrets, nav, providers_dirs)
    compile_templates()
    return app


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", status_code=exc.status_code, status=exc.status_code, message=exc.detail)
