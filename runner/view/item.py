"""The Item page: one prompt x data row x repeat of a run, every target's answer in full, with
the messages as sent, tool calls, JSON, every HTTP attempt, the checks' and judges' verdicts, cost.

The results keep the prompt's text, not the request. The messages are rebuilt from the job
file and shown only when they hash to the item's key, i.e. they are exactly what was sent;
images are inlined as thumbnails (data: URLs, the only images the page's policy allows).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config.jobs import Job
from ..errors import HanzoError
from ..reports.items import parse_failed_checks, verdict
from ..store.grid import attempts_of, cells_of
from ..store.records import RunRecord
from .pages import database, int_param, render
from .run import find_run, judged, variables

THUMBNAIL_BYTES = 4 * 1024 * 1024  # larger images are named, not inlined
REBUILD_ITEMS = 200_000  # how far into a job's items the page looks for this one's messages


def item_page(request: Request) -> Response:
    run_id = int(request.path_params["run_id"])
    row, repeat, prompt_id = int_param(request, "row"), int_param(request, "repeat"), request.query_params.get("prompt")
    if row is None or repeat is None or prompt_id is None:
        raise HTTPException(400, "an item is named by row, prompt and repeat: follow a link from its run's page")
    key = (row, prompt_id, repeat)
    with database(request) as db:
        run = find_run(db, run_id)
        results = cells_of(db, run_id, [key], every_column=True)[key]
        if not results:
            raise HTTPException(404, f"run {run_id} has no item {prompt_id} row {row} repeat {repeat}")
        attempts = attempts_of(db, run_id, [r["item_key"] for r in results.values()])
    first = next(iter(results.values()))
    messages, why_not = messages_as_sent(run, first, request.app.state.view.providers_dirs)
    answers = [answer(r, attempts[r["item_key"]]) for r in results.values()]
    return render(request, "item.html", run=run, prompt_id=prompt_id, row_index=None if row < 0 else row,
                  repeat_index=repeat, vars=variables(first.get("vars")), prompt=first["prompt"], messages=messages,
                  messages_note=why_not, answers=answers)


def answer(result: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's result as the page shows it: every field, the JSON texts parsed."""
    return {**result, "verdict": verdict(result), "failed": parse_failed_checks(result["failed_checks"]),
            "checks": _json_list(result.get("checks")), "judged": judged(result.get("checks")),
            "tool_calls": _json_list(result.get("tool_calls")), "attempts": attempts}


def _json_list(raw: str | None) -> list[Any]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def messages_as_sent(run: RunRecord, result: Mapping[str, Any],
                     providers_dirs: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], str | None]:
    """The item's messages rebuilt from its job file (its providers found as ``providers_dirs`` says),
    or why they cannot be shown."""
    if not run.job_path or not Path(run.job_path).is_file():
        return [], f"the job file ({run.job_path or 'unknown'}) is not here to rebuild the messages from"
    try:
        job = _load_job(run.job_path, Path(run.job_path).stat().st_mtime_ns, providers_dirs)
    except HanzoError as e:
        return [], f"the job file no longer loads, so the messages cannot be rebuilt: {str(e).splitlines()[0]}"
    target = next((t for t in job.targets if t.label == result["target"]), None)
    if target is None:
        return [], f"the job file no longer has the target {result['target']}"
    for n, item in enumerate(job.items_for(target)):
        if item.item_key == result["item_key"]:
            return [_message(m) for m in item.messages], None
        if n >= REBUILD_ITEMS:
            break
    return [], "the job file changed since this run (no item of it hashes to this one's key)"


@functools.lru_cache(maxsize=4)
def _load_job(path: str, mtime_ns: int, providers_dirs: tuple[str, ...]) -> Job:
    """The job file as a run would load it; loaded again only when the file changes (its data is read lazily)."""
    from ..engine.launch import prepare
    from ..engine.options import RunOptions

    return prepare(Path(path), RunOptions(providers_dirs=providers_dirs))[0]


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append({"text": content})
    else:
        for part in content or ():
            parts.append({"text": part["text"]} if "text" in part else _image(part["image"]))
    calls = [{"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False, default=str)}
             for c in message.get("tool_calls") or ()]
    return {"role": message["role"], "parts": parts, "tool_calls": calls}


def _image(image: Any) -> dict[str, Any]:
    if image.url is not None:
        return {"image": str(image), "src": None}  # the page loads nothing from elsewhere
    try:
        data = image.load(THUMBNAIL_BYTES)
    except HanzoError as e:
        return {"image": str(image), "src": None, "problem": str(e)}
    return {"image": str(image), "src": data.data_url}


routes = [Route("/runs/{run_id:int}/item", item_page)]
