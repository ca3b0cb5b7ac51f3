"""The Runs page: every run of the database, newest first; running ones update live.

``/api/runs?id=N`` gives the same rows as JSON, figures already formatted as the page shows
them, so the page's script only copies text into cells (runner/view/static/app.js).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..store.queries import batch_states, list_runs
from .pages import ENV, database, render

NAV = ("Runs", "/")
LIVE_STATUSES = ("running",)  # a run whose rows still change


def shown(run: dict[str, Any], batches: dict[str, int] | None) -> dict[str, str]:
    """A run's figures as the page prints them (the JSON endpoint sends these too)."""
    f = ENV.filters
    total = run["items_total"]
    return {
        "status": run["status"],
        "items": f"{run['items']:,}" + (f" / {total:,}" if total is not None and total != run["items"] else ""),
        "ok": f"{run['ok']:,}", "errors": f"{run['errors']:,}", "pass_rate": f["pct"](run["pass_rate"]),
        "cost": f["usd"](run["cost_usd"], run["unpriced"]),
        "duration": "-" if run["duration_s"] is None else f"{run['duration_s']:,.1f} s",
        "batches": ", ".join(f"{n} {state}" for state, n in (batches or {}).items()),
    }


def runs_page(request: Request) -> Response:
    with database(request) as db:
        runs, batches = list_runs(db), batch_states(db)
    rows = [{**run, "shown": shown(run, batches.get(run["id"]))} for run in reversed(runs)]
    return render(request, "runs.html", runs=rows, live=LIVE_STATUSES)


def runs_json(request: Request) -> Response:
    """The figures of the runs named by ``?id=`` (the running ones a page shows), or of every run."""
    try:
        ids = [int(v) for v in request.query_params.getlist("id")] or None
    except ValueError:
        return JSONResponse({"error": "id must be a run id (a number)"}, status_code=400)
    with database(request) as db:
        runs, batches = list_runs(db, ids), batch_states(db)
    return JSONResponse({"runs": [{"id": run["id"], "live": run["status"] in LIVE_STATUSES,
                                   "shown": shown(run, batches.get(run["id"]))} for run in runs]})


routes = [Route("/", runs_page), Route("/api/runs", runs_json)]
