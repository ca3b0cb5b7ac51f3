"""Compare two runs: what ``hanzo-run diff A B`` shows (runner/reports/diff.py), per target, the
items that changed with both answers side by side, regressions first."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..reports.diff import CHANGES, LABELS, REGRESSIONS, diff_runs, regressed, regression_reason
from .pages import database, int_param, render
from .run import find_run

CHANGES_SHOWN = 200  # per target; `hanzo-run diff A B --json` has every one


def compare_page(request: Request) -> Response:
    a, b = int_param(request, "a"), int_param(request, "b")
    if a is None or b is None:
        raise HTTPException(400, "name the two runs to compare: /compare?a=RUN&b=RUN")
    with database(request) as db:
        run_a, run_b = find_run(db, a), find_run(db, b)
        diff = diff_runs(db, a, b)
    targets = [{"target": t.target, "totals": t.totals, "more": max(len(t.changes) - CHANGES_SHOWN, 0),
                "changes": [{"change": c, "label": LABELS[c.change], "regression": c.change in REGRESSIONS,
                             "query": urlencode({"row": -1 if c.row_index is None else c.row_index,
                                                 "prompt": c.prompt_id or "", "repeat": c.repeat_index})}
                            for c in t.changes[:CHANGES_SHOWN]]}
               for t in diff.targets]
    return render(request, "compare.html", run_a=run_a, run_b=run_b, diff=diff, targets=targets,
                  changes=[(name, LABELS[name], name in REGRESSIONS) for name in CHANGES],
                  regressed=regressed(diff), reason=regression_reason(diff) if regressed(diff) else None)


routes = [Route("/compare", compare_page)]
