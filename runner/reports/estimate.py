"""How ``--dry-run`` shows its estimate (runner/engine/estimate.py computes it): a table, or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

from ..engine.estimate import TYPICAL_OUTPUT_TOKENS, TargetEstimate, totals


def render_estimate(estimates: list[TargetEstimate], *, as_json: bool) -> None:
    if as_json:
        # The batch figures only where batch mode applies: without it the document is as it always was.
        shown = [{k: v for k, v in asdict(e).items()
                  if (not k.startswith("batch_") or e.batch_discount) and (k != "judge" or e.judge)}
                 for e in estimates]
        summed = {k: v for k, v in totals(estimates).items() if k != "batch_typical_cost_usd" or v is not None}
        print(json.dumps({"targets": shown, "totals": summed}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold", title="dry run: nothing was sent", title_justify="left")
    batch = any(e.batch_discount for e in estimates)
    names = ["target", "items", "input tokens (est.)", "max out/item", "typical $", "worst case $"]
    if batch:  # batch mode: the batch price beside the synchronous one
        names += ["batch typical $", "batch worst $"]
    for name in (*names, "price from"):
        table.add_column(name, justify="left" if name in ("target", "price from") else "right")
    for e in estimates:
        cells = [e.target, f"{e.items:,}", f"{e.input_tokens:,}",
                 "unbounded" if e.max_output_tokens is None else f"{e.max_output_tokens:,}",
                 _usd(e.typical_cost_usd), _usd(e.worst_cost_usd, e.max_output_tokens is None)]
        if batch:
            cells += [_usd(e.batch_typical_cost_usd), _usd(e.batch_worst_cost_usd, e.max_output_tokens is None)]\
                if e.batch_discount else ["sync", "sync"]
        table.add_row(*cells, e.price_source or "-")
    t = totals(estimates)
    table.add_section()
    cells = ["total", f"{t['items']:,}", f"{t['input_tokens']:,}", "", _usd(t["typical_cost_usd"]),
             _usd(t["worst_cost_usd"], bool(t["unbounded"]))]
    if batch:
        cells += [_usd(t["batch_typical_cost_usd"]), ""]
    table.add_row(*cells, "")
    Console(width=200).print(table)
    err = Console(stderr=True)
    if t["unpriced"]:
        err.print(f"unpriced (not in the totals): {', '.join(t['unpriced'])}")
    if t["unbounded"]:
        err.print(f"no max_tokens, worst case unbounded: {', '.join(t['unbounded'])}")
    err.print(f"estimates: input tokens ~ characters / 4 + 4 per message; typical answer "
              f"{TYPICAL_OUTPUT_TOKENS} tokens (at most max_tokens); worst case max_tokens per item")


def _usd(value: float | None, unbounded: bool = False) -> str:
    if value is None:
        return "unbounded" if unbounded else "unpriced"
    return f"{value:.4f}"
