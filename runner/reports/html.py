"""``report --html``: one self-contained HTML file (plotly's JS embedded; no CDN, no web
fonts) with the comparison table, the latency distribution per target, pass rate against
cost per target, and the failed items with their errors and failed checks.

Latency boxes are drawn from percentiles computed in SQL, so a million-row run makes the
same small file. Needs the ``report`` extra (plotly).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import UsageError
from ..store.queries import percentile
from ..store.results import failed_count, results_of
from ..store.runs import resolve_run
from .tables import comparison

MAX_FAILED_ROWS = 500
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
td.answer { max-width: 32rem; white-space: pre-wrap; text-align: left; }
.chart { max-width: 70rem; }
.muted { color: #777; }
"""


def write_html(db: sqlite_utils.Database, run_id: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(db, run_id), encoding="utf-8")


def render_html(db: sqlite_utils.Database, run_id: int) -> str:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise UsageError("report --html needs plotly: pip install 'hanzo-run[report]'") from None
    run = resolve_run(db, run_id)
    assert run is not None, f"no run {run_id}"  # the command checked it
    job_name, status, started = run.job_name, run.status, run.started_at
    rows = comparison(db, run_id)
    checked = any(r["pass_rate"] is not None for r in rows)

    latency = go.Figure()
    for r in rows:
        stats = [percentile(db, run_id, r["target"], "latency_ms", f) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
        if stats[2] is None:
            continue
        low, q1, median, q3, high = stats
        latency.add_trace(go.Box(name=r["target"], x=[r["target"]], q1=[q1], median=[median], q3=[q3], lowerfence=[low],
                                 upperfence=[high], boxpoints=False))
    latency.update_layout(title="Latency per target (ms; box: quartiles, whiskers: min and max)",
                          showlegend=False, yaxis_title="ms", margin={"t": 60})

    rate_key, rate_name = ("pass_rate", "pass rate") if checked else ("ok_rate", "ok rate")
    priced = [r for r in rows if r["cost_per_1k_items"] is not None]
    cost = go.Figure(go.Scatter(
        x=[r["cost_per_1k_items"] for r in priced], y=[r[rate_key] for r in priced],
        text=[r["target"] for r in priced], mode="markers+text", textposition="top center",
        marker={"size": 12}))
    unpriced = [r["target"] for r in rows if r["cost_per_1k_items"] is None]
    note = f"<br><sub>unpriced, not shown: {', '.join(unpriced)}</sub>" if unpriced else ""
    cost.update_layout(title=f"{rate_name.capitalize()} against cost{note}", xaxis_title="USD per 1,000 items",
                       yaxis_title=rate_name, yaxis_tickformat=".0%", yaxis_range=[0, 1.05], margin={"t": 80})

    config = {"displaylogo": False, "responsive": True}
    latency_html = latency.to_html(full_html=False, include_plotlyjs=True, div_id="latency-chart", config=config)
    cost_html = cost.to_html(full_html=False, include_plotlyjs=False, div_id="cost-chart", config=config)
    title = f"hanzo-run report: {job_name}, run {run_id}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">{escape(status)}, started {escape(started)}. Pass rate counts a failed request as not passed;
"unpriced" means some answer's model has no known price.</p>
<h2>Comparison</h2>
{_comparison_table(rows)}
<h2>Charts</h2>
<div class="charts"><div class="chart">{latency_html}</div><div class="chart">{cost_html}</div></div>
<h2>Failed items</h2>
{_failed_table(db, run_id)}
</body></html>
"""


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "usd":
        return f"{value:.4f}"
    if kind == "ms":
        return f"{value:,.0f}"
    if kind == "num":
        return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    return escape(str(value))


COMPARISON = (("target", "target", "text"), ("items", "items", "num"), ("ok", "ok_rate", "pct"),
              ("pass", "pass_rate", "pct"), ("p50 ms", "p50_latency_ms", "ms"), ("p95 ms", "p95_latency_ms", "ms"),
              ("p50 ttft ms", "p50_ttft_ms", "ms"), ("out tok/s", "output_tokens_per_s", "num"),
              ("tokens in", "input_tokens", "num"), ("tokens out", "output_tokens", "num"),
              ("cost $", "cost_usd", "usd"), ("$ / 1k items", "cost_per_1k_items", "usd"))


def _comparison_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f'<th class="{"text" if k == "text" else ""}">{escape(n)}</th>' for n, _, k in COMPARISON)
    body = []
    for r in rows:
        cells = []
        for _, key, kind in COMPARISON:
            shown = "unpriced" if kind == "usd" and r[key] is None and r["unpriced"] else _cell(r[key], kind)
            cells.append(f'<td class="{"text" if kind == "text" else ""}">{shown}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _failed_table(db: sqlite_utils.Database, run_id: int) -> str:
    total = failed_count(db, run_id)
    if not total:
        return '<p id="failed">No failed items.</p>'
    rows = results_of(db, run_id, ("target", "prompt_id", "row_index", "repeat_index", "status", "error_code",
                                   "error_message", "failed_checks", "response_text"), failed_only=True,
                      limit=MAX_FAILED_ROWS)
    body = []
    for r in rows:
        if r["status"] != "ok":
            why = f"<b>{escape(r['error_code'] or 'ERROR')}</b>: {escape(r['error_message'] or '')}"
        else:
            why = "<br>".join(f"<b>{escape(f['check'])}</b>: {escape(f['reason'])}"
                              for f in json.loads(r["failed_checks"] or "[]"))
        row_index, repeat_index = r["row_index"], r["repeat_index"]
        item = r["prompt_id"] + ("" if row_index is None else f" row {row_index}") + (
            f" #{repeat_index}" if repeat_index else "")
        body.append(f'<tr><td class="text">{escape(r["target"])}</td><td class="text">{escape(item)}</td>'
                    f'<td class="text">{why}</td><td class="answer">{escape(r["response_text"] or "")}</td></tr>')
    more = (f'<p class="muted">Showing the first {MAX_FAILED_ROWS} of {total}; the rest are in the database.</p>'
            if total > MAX_FAILED_ROWS else "")
    return ('<table id="failed"><thead><tr><th class="text">target</th><th class="text">item</th>'
            '<th class="text">error or failed checks</th><th class="text">answer</th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{more}")
