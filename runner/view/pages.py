"""Rendering: one Jinja2 environment (autoescaped: an answer is always text), the filters that
format figures the way the terminal tables do, and ``render`` for a page module's endpoints.

``render_static`` renders the same templates without a server: ``report --html`` is the Run
page written to a file (no links to other pages, no script).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..store.database import read_db


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def _usd(value: float | None, unpriced: int = 0, digits: int = 4) -> str:
    return "unpriced" if value is None and unpriced else "-" if value is None else f"{value:.{digits}f}"


def _pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False)


ENV = Environment(loader=PackageLoader("runner.view", "templates"), autoescape=select_autoescape(default=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(pct=_pct, ms=_ms, num=_num, usd=_usd, pretty_json=_pretty_json)


def compile_templates() -> None:
    """Compile every template now, at start-up, not on the first request of each page."""
    for name in ENV.list_templates():
        ENV.get_template(name)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page of the app: its template with the nav, the CSRF token and the read-only flag."""
    view = request.app.state.view
    html = ENV.get_template(template).render(
        export=False, nav=view.nav, path=request.url.path, csrf=view.secrets.csrf,
        read_only=view.secrets.read_only, db_shown=view.db_shown, **context)
    return HTMLResponse(html, status_code=status_code)


def render_static(template: str, **context: Any) -> str:
    """A page as a file: same template, no nav links, no script (``report --html``)."""
    return ENV.get_template(template).render(export=True, nav=(), path="", csrf="", read_only=True, **context)


@contextmanager
def database(request: Request) -> Iterator[sqlite_utils.Database]:
    """The results database for one request: a connection of its own (requests run on worker threads)."""
    path: Path = request.app.state.view.db_path
    db = read_db(path)
    try:
        yield db
    finally:
        db.close()


def int_param(request: Request, name: str) -> int | None:
    """A whole-number query parameter; None when absent or not a number."""
    raw = request.query_params.get(name, "")
    try:
        return int(raw)
    except ValueError:
        return None
