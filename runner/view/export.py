"""``report --html``: the Run page as one file. Same template as the app, rendered without a
server: styles inline, charts as inline SVG, no script, no link to load; it opens offline."""

from __future__ import annotations

from pathlib import Path

from ..store.database import read_db
from ..store.grid import GridFilter
from ..store.runs import resolve_run
from .pages import render_static
from .run import run_context

EXPORT_ROWS = 1000  # grid rows in the file; a larger run says where the rest is


def run_page_html(db_path: Path, run_id: int) -> str:
    db = read_db(db_path)
    try:
        run = resolve_run(db, run_id)
        assert run is not None, f"no run {run_id}"  # the command checked it
        context = run_context(db, run, GridFilter(), size=EXPORT_ROWS)
    finally:
        db.close()
    return render_static("run.html", previous=None, **context)


def write_run_page(db_path: Path, run_id: int, path: Path) -> None:
    """Rendered in memory first: a failure leaves no half-written file."""
    html = run_page_html(db_path, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
