"""Jobs shaped like the ones users write, against the floor: scenarios (g) to (k) and the scale curve (s).

The shipped ``providers.d/openai.yaml`` is copied with its ``base_url`` pointed at the mock
server and its ``limits`` opened (its 500 requests a minute would make 5,000 requests take ten
minutes); pricing, auth (the key comes from ``OPENAI_API_KEY``), retry, timeouts,
``max_tokens_field`` and models are the shipped ones. The job has a templated prompt,
templated checks and the response cache on (a fresh cache folder for every run, so every
request is sent). Data comes inline in the job file, from a CSV file or from a JSONL file.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from .driver import REPO, TITLES, Mock, Row, Sample, Workspace, checked, floor_cmd, measure, med, pairs

SHAPE_TITLES = {
    "g": "user-shaped job, inline data, 0 ms: CPU ms per request",
    "h": "user-shaped job, CSV data file, 0 ms: CPU ms per request",
    "i": "user-shaped job, JSONL data file, 0 ms: CPU ms per request",
    "j": "user-shaped job, inline data, 50 ms latency: wall s",
    "k": "user-shaped job, inline data, streaming, 0 ms: CPU ms per request (floor non-streaming, as f)",
    "s": "scale curve",
    "l": "where scenario g's CPU goes",
}
TITLES.update(SHAPE_TITLES)
TARGET = "openai/gpt-4o-mini"
_caches = itertools.count(1)


def shipped_openai(ws: Workspace, url: str) -> None:
    """providers.d/openai.yaml as shipped, but sent to the mock server and not held to 500 requests/min."""
    data = yaml.safe_load((REPO / "providers.d" / "openai.yaml").read_text())
    data["base_url"] = f"{url}/v1"
    data["limits"] = {"requests": 1_000_000, "window": 1, "concurrency": 64}
    (ws.root / "providers" / "openai.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    ws.env["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"


def rows(n: int) -> Iterator[dict[str, str | int]]:
    return ({"country": f"Country {i}", "expect": "hello", "n": i} for i in range(n))


def user_job(ws: Workspace, name: str, n: int, data: str, *, stream: bool = False, checks: bool = True,
             cache: bool = True) -> Path:
    """A job of ``n`` items with its rows ``data``: "inline", "csv" or "jsonl"."""
    header = (f"name: {name}\ntargets: [{TARGET}]\n"
              "prompts:\n  - id: capital\n    text: 'What is the capital of {{country}}? One word. ({{n}})'\n"
              + ("checks:\n  - contains: '{{expect}}'\n    ignore_case: true\n  - max_output_tokens: 20\n"
                 if checks else "")
              + f"params: {{temperature: 0, max_tokens: 16}}\ncache: {'true' if cache else 'false'}\n"
              f"concurrency: 64\nstream: {'true' if stream else 'false'}\n")
    path = ws.root / f"{name}.yaml"
    with path.open("w") as f:
        f.write(header)
        if data == "inline":
            f.write("data:\n")
            for row in rows(n):
                f.write(f"  - {{country: {row['country']}, expect: {row['expect']}, n: {row['n']}}}\n")
            return path
        f.write(f"data: {name}.{data}\n")
    with (ws.root / f"{name}.{data}").open("w", newline="") as f:
        if data == "csv":
            writer = csv.DictWriter(f, ["country", "expect", "n"])
            writer.writeheader()
            writer.writerows(rows(n))
        else:
            f.writelines(json.dumps(row) + "\n" for row in rows(n))
    return path


def fresh_cache(ws: Workspace) -> dict[str, str]:
    """The workspace's environment with an empty response cache, so no answer comes from an earlier run."""
    return {**ws.env, "HANZO_RUN_CACHE_DIR": str(ws.root / f"cache-{next(_caches)}")}


def scenario_shape(ws: Workspace, args: argparse.Namespace, key: str) -> Row:
    data = {"g": "inline", "h": "csv", "i": "jsonl", "j": "inline", "k": "inline"}[key]
    latency, stream = (50, False) if key == "j" else (0, key == "k")
    n = args.requests
    mock = Mock(latency)
    try:
        shipped_openai(ws, mock.url)
        job = user_job(ws, f"shape-{key}", n, data, stream=stream)
        fs, hs = pairs(args.runs, lambda: measure(floor_cmd(mock.url, n), ws.env),
                       lambda: measure(ws.hanzo(job), fresh_cache(ws)))
        sent = mock.call("GET", "/stats")["requests"]
        assert sent == 2 * args.runs * n, f"the mock saw {sent} requests, not {2 * args.runs * n}: a cache answered?"
    finally:
        mock.close()
    if key == "j":
        h, f = med(hs, lambda s: s.wall), med(fs, lambda s: s.wall)
        return Row(key, TITLES[key], h, f, "ratio <= 1.05", h / f <= 1.05, "s", f"{n} requests, {data}")
    h, f = med(hs, lambda s: s.cpu) / n * 1000, med(fs, lambda s: s.cpu) / n * 1000
    limit = 2.0 if stream else 1.5
    return Row(key, TITLES[key], h, f, f"ratio <= {limit}", h / f <= limit, "ms",
               f"{n} requests, {data}; wall {med(hs, lambda s: s.wall):.2f} vs {med(fs, lambda s: s.wall):.2f} s; "
               f"RSS {med(hs, lambda s: s.rss_mb):.0f} MB")


def breakdown(ws: Workspace, args: argparse.Namespace) -> str:
    """Where scenario g's CPU goes: the same inline job with one part at a time, against the floor.

    The fixed start is a run of one item (imports, loading, the price data, the database); what a request
    costs is the rest over ``--requests`` requests, with the checks and the response cache off and on.
    """
    n = args.requests
    variants = [("no checks, no cache", False, False), ("checks", True, False), ("cache", False, True),
                ("checks and cache (g)", True, True)]
    lines = [f"where scenario g's CPU goes: the inline job, {n:,} requests, one part at a time, 0 ms; "
             f"median of {args.runs}", "",
             "| | CPU s | the fixed start: CPU s of 1 request | CPU ms per request after it | ratio |",
             "|---|---|---|---|---|"]
    mock = Mock(0)
    try:
        shipped_openai(ws, mock.url)
        floor = {count: med(_runs(args.runs, functools.partial(measure, floor_cmd(mock.url, count), ws.env)), _cpu)
                 for count in (1, n)}
        floor_each = (floor[n] - floor[1]) / (n - 1) * 1000
        lines.append(f"| floor | {floor[n]:.2f} | {floor[1]:.2f} | {floor_each:.3f} | 1 |")
        start = med(_runs(args.runs, functools.partial(_run_fresh, ws, user_job(ws, "part-start", 1, "inline"))),
                    _cpu)
        lines.append(f"| hanzo-run's start (the job of g, 1 item) | {start:.2f} | {start:.2f} | | "
                     f"{start / floor[1]:.2f} |")
        for i, (label, checks, cache) in enumerate(variants):
            print(f"  {label}", file=sys.stderr)
            job = user_job(ws, f"part-{i}", n, "inline", checks=checks, cache=cache)
            cpu = med(_runs(args.runs, functools.partial(_run_fresh, ws, job)), _cpu)
            each = (cpu - start) / (n - 1) * 1000
            lines.append(f"| {label} | {cpu:.2f} | | {each:.3f} | {each / floor_each:.2f} |")
    finally:
        mock.close()
    return "\n".join(lines)


def scale_curve(ws: Workspace, args: argparse.Namespace) -> str:
    """At each size: load/validate (CSV and inline), then the whole run against the floor's."""
    lines = ["scale curve: user-shaped job (CSV data file, shipped openai.yaml, checks, cache), 0 ms latency; "
             f"median of {args.scale_runs}",
             "", "| items | validate CSV: wall s, CPU s, RSS MB | validate inline: wall s, CPU s | "
             "hanzo-run: CPU ms/item, wall s, peak RSS MB | floor: CPU ms/item, wall s | CPU ratio |",
             "|---|---|---|---|---|---|"]
    mock = Mock(0)
    try:
        shipped_openai(ws, mock.url)
        for n in args.scale_sizes:
            print(f"  {n:,} items", file=sys.stderr)
            lines.append("| " + " | ".join(_curve_cells(ws, args, mock, n)) + " |")
    finally:
        mock.close()
    return "\n".join(lines)


def _curve_cells(ws: Workspace, args: argparse.Namespace, mock: Mock, n: int) -> list[str]:
    validate = [sys.executable, "-m", "runner", "validate"]
    csv_job = user_job(ws, f"scale-{n}", n, "csv")
    checked = _runs(args.scale_runs, lambda: measure([*validate, str(csv_job)], ws.env))
    cells = [f"{n:,}", f"{med(checked, _wall):.2f}, {med(checked, _cpu):.2f}, {med(checked, _rss):.0f}"]
    if n <= args.scale_inline_max:
        inline_job = user_job(ws, f"scale-inline-{n}", n, "inline")
        inline = _runs(args.scale_runs, lambda: measure([*validate, str(inline_job)], ws.env))
        cells.append(f"{med(inline, _wall):.2f}, {med(inline, _cpu):.2f}")
    else:
        cells.append(f"not run (over --scale-inline-max {args.scale_inline_max:,})")
    if n > args.scale_run_max:
        return [*cells, f"not run (over --scale-run-max {args.scale_run_max:,})", "", ""]
    fs, hs = pairs(args.scale_runs, lambda: measure(floor_cmd(mock.url, n), ws.env),
                   lambda: measure(ws.hanzo(csv_job), fresh_cache(ws)))
    h, f = med(hs, _cpu) / n * 1000, med(fs, _cpu) / n * 1000
    return [*cells, f"{h:.3f}, {med(hs, _wall):.2f}, {med(hs, _rss):.0f}", f"{f:.3f}, {med(fs, _wall):.2f}",
            f"{h / f:.2f}"]


def _run_fresh(ws: Workspace, job: Path) -> Sample:
    """A run of ``job`` with an empty response cache."""
    return measure(ws.hanzo(job), fresh_cache(ws))


def _runs(count: int, fn: Callable[[], Sample]) -> list[Sample]:
    return [checked(fn(), "hanzo-run validate") for _ in range(count)]


def _wall(s: Sample) -> float:
    return s.wall


def _cpu(s: Sample) -> float:
    return s.cpu


def _rss(s: Sample) -> float:
    return s.rss_mb
