"""Run hanzo-run and the aiohttp floor side by side against the mock server.

Every measurement is a whole process (``python -m runner ...``, ``python -m bench.floor``):
CPU (user + system), wall time and peak RSS come from ``os.wait4`` of that child.
Runs alternate floor / hanzo-run so both see the same machine load; the table shows
medians and ratios. Absolute numbers move with the machine; ratios measured in the
same invocation are what the goals are about.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = "abcdefghijkls"
TITLES = {
    "a": "0 ms latency: CPU ms per request",
    "b": "50 ms latency: wall s",
    "c": "limit N/1 s window: wall s (floor = ideal)",
    "d": "many items (echo): peak RSS MB (floor = 1/10 the items)",
    "e": "startup: wall s (floor = python -c pass)",
    "f": "streaming, 0 ms: CPU ms per request (floor non-streaming)",
}


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float
    code: int
    stderr: str = ""


def measure(argv: Sequence[str], env: dict[str, str] | None = None) -> Sample:
    """Run one process to the end; its own wall, CPU and peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stderr is not None
    err = proc.stderr.read()  # drained while it runs, so a chatty child never blocks
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                  err.decode(errors="replace")[-2000:])


class Mock:
    """The mock server as a child process on a free port."""

    def __init__(self, latency_ms: float = 0, window: float = 1.0, fault_every: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.mockserver", "--port", "0", "--latency-ms", str(latency_ms),
             "--window", str(window), "--fault-every", str(fault_every)],
            stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"mock server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str) -> dict[str, object]:
        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=60) as response:
            result: dict[str, object] = json.loads(response.read())
            return result

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class Workspace:
    """Temporary provider folder, job files and databases for one bench invocation."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "providers").mkdir()
        (self.root / "home").mkdir()
        # Modules load from bytecode (__pycache__, as pip leaves it for the libraries), as they do where
        # hanzo-run is installed: a machine that sets PYTHONDONTWRITEBYTECODE would otherwise compile every
        # module of hanzo-run (not of the floor, which is one file) from source in every run, 0.1 s of CPU.
        self.env = {**os.environ, "HANZO_RUN_HOME": str(self.root / "home")}
        for name in ("HANZO_RUN_PROVIDERS_DIR", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"):
            self.env.pop(name, None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "runner"), str(REPO / "bench")],
                       env=self.env, check=True)

    def provider(self, url: str, *, requests: int = 1_000_000, window: float = 1, concurrency: int = 64) -> None:
        (self.root / "providers" / "mock.yaml").write_text(
            "id: mock\nname: Bench mock\nkind: local\nprotocol: openai\n"
            f"base_url: {url}/v1\n"
            f"limits: {{requests: {requests}, window: {window}, concurrency: {concurrency}}}\n"
            "retry: {max_retries: 3, initial_delay: 0.1, max_delay: 1}\ntimeout: 30\n"
            "models:\n  list_path: null\n  default: bench\n"
            "  known:\n    - id: bench\n      pricing: {input: 0.15, output: 0.6}\n")

    def job(self, name: str, target: str, items: int, *, stream: bool = False, concurrency: int = 64) -> Path:
        """``items`` work items: rows of a JSONL file x repeat, so a million items need no big file."""
        rows = 1 if items <= 100_000 else 1000
        assert items % rows == 0
        data = self.root / f"{name}.jsonl"
        data.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(rows)))
        path = self.root / f"{name}.yaml"
        path.write_text(
            f"name: {name}\ntargets: [{target}]\nprompts:\n  - id: hello\n    text: 'Say hello. {{{{n}}}}'\n"
            f"data: {data.name}\nparams: {{max_tokens: 16}}\nrepeat: {items // rows}\n"
            f"stream: {'true' if stream else 'false'}\nconcurrency: {concurrency}\n")
        return path

    def hanzo(self, job: Path) -> list[str]:
        db = self.root / f"{job.stem}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return [sys.executable, "-m", "runner", "run", str(job), "--quiet", "--db", str(db),
                "--providers-dir", str(self.root / "providers")]


def floor_cmd(url: str, requests: int, concurrency: int = 64, stream: bool = False) -> list[str]:
    return [sys.executable, "-m", "bench.floor", f"{url}/v1/chat/completions", "--requests", str(requests),
            "--concurrency", str(concurrency), *(["--stream"] if stream else [])]


@dataclass
class Row:
    scenario: str
    label: str
    hanzo: float
    floor: float
    goal: str
    passed: bool
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.hanzo / self.floor if self.floor else float("nan")


def checked(sample: Sample, what: str) -> Sample:
    if sample.code != 0:
        raise RuntimeError(f"{what} exited {sample.code}:\n{sample.stderr}")
    return sample


def pairs(runs: int, floor: Callable[[], Sample], hanzo: Callable[[], Sample],
          after: Callable[[], None] | None = None) -> tuple[list[Sample], list[Sample]]:
    fs: list[Sample] = []
    hs: list[Sample] = []
    for i in range(runs):
        order = [("floor", floor), ("hanzo-run", hanzo)]
        if i % 2:
            order.reverse()  # neither side always runs on a cooler machine
        for name, fn in order:
            sample = checked(fn(), name)
            (fs if name == "floor" else hs).append(sample)
            if after:
                after()
        print(f"  run {i + 1}: floor {fs[-1].wall:.2f} s wall {fs[-1].cpu:.2f} s cpu; "
              f"hanzo-run {hs[-1].wall:.2f} s wall {hs[-1].cpu:.2f} s cpu {hs[-1].rss_mb:.0f} MB", file=sys.stderr)
    return fs, hs


def med(samples: list[Sample], key: Callable[[Sample], float]) -> float:
    return statistics.median(key(s) for s in samples)


def scenario_cpu(ws: Workspace, args: argparse.Namespace, *, stream: bool, key: str) -> Row:
    n = args.requests
    mock = Mock(0)
    try:
        ws.provider(mock.url)
        job = ws.job(f"cpu{'-stream' if stream else ''}", "mock/bench", n, stream=stream)
        fs, hs = pairs(args.runs, lambda: measure(floor_cmd(mock.url, n), ws.env),
                       lambda: measure(ws.hanzo(job), ws.env))
    finally:
        mock.close()
    h = med(hs, lambda s: s.cpu) / n * 1000
    f = med(fs, lambda s: s.cpu) / n * 1000
    limit = 2.5 if stream else 2.0
    return Row(key, TITLES[key], h, f, f"ratio <= {limit}", h / f <= limit, "ms",
               f"{n} requests; wall {med(hs, lambda s: s.wall):.2f} vs {med(fs, lambda s: s.wall):.2f} s")


def scenario_latency(ws: Workspace, args: argparse.Namespace) -> Row:
    n = args.requests
    mock = Mock(50)
    try:
        ws.provider(mock.url)
        job = ws.job("latency", "mock/bench", n)
        fs, hs = pairs(args.runs, lambda: measure(floor_cmd(mock.url, n), ws.env),
                       lambda: measure(ws.hanzo(job), ws.env))
    finally:
        mock.close()
    h, f = med(hs, lambda s: s.wall), med(fs, lambda s: s.wall)
    ideal = n / 64 * 0.05
    return Row("b", TITLES["b"], h, f, "ratio <= 1.10", h / f <= 1.10, "s", f"{n} requests; ideal {ideal:.2f} s")


def scenario_limit(ws: Workspace, args: argparse.Namespace) -> Row:
    n, limit = args.limit_requests, args.rate
    mock = Mock(0, window=1.0)
    overs: list[int] = []
    peaks: list[int] = []
    walls: list[float] = []
    try:
        ws.provider(mock.url, requests=limit, window=1)
        job = ws.job("limit", "mock/bench", n)
        for i in range(args.runs):
            mock.call("POST", "/reset")
            sample = checked(measure(ws.hanzo(job), ws.env), "hanzo-run")
            stats = mock.call("GET", "/stats")
            assert stats["requests"] == n, stats
            peak = max(int(stats["max_in_window"]), int(stats["max_in_sliding_window"]))  # type: ignore[call-overload]
            peaks.append(peak)
            overs.append(int(peak > limit))
            walls.append(sample.wall)
            print(f"  run {i + 1}: hanzo-run {sample.wall:.2f} s wall; server: {stats}", file=sys.stderr)
    finally:
        mock.close()
    ideal = n / limit
    h = statistics.median(walls)
    ok = h / ideal <= 1.05 and not any(overs)
    return Row("c", TITLES["c"].replace("N", str(limit)), h, ideal, "ratio <= 1.05, 0 windows over", ok, "s",
               f"{n} requests; most in any 1 s window (fixed or sliding): {max(peaks)}, limit {limit}")


def scenario_memory(ws: Workspace, args: argparse.Namespace) -> Row:
    big, small = args.items, max(args.items // 10, 1000)
    job_big = ws.job("many", "echo/echo", big)
    job_small = ws.job("fewer", "echo/echo", small)
    fs, hs = pairs(args.memory_runs, lambda: measure(ws.hanzo(job_small), ws.env),
                   lambda: measure(ws.hanzo(job_big), ws.env))
    h, f = med(hs, lambda s: s.rss_mb), med(fs, lambda s: s.rss_mb)
    return Row("d", TITLES["d"], h, f, "<= 200 MB, ratio ~1", h <= 200 and h / f <= 1.2, "MB",
               f"{big} vs {small} items; {big / med(hs, lambda s: s.wall):.0f} items/s")


def scenario_startup(ws: Workspace, args: argparse.Namespace) -> list[Row]:
    shipped = [str(p) for p in sorted((REPO / "providers.d").glob("*.yaml")) + sorted((REPO / "jobs").glob("*.yaml"))]
    base = [sys.executable, "-m", "runner"]
    rows = []
    for label, argv in (("--help", [*base, "--help"]), ("validate", [*base, "validate", *shipped])):
        fs, hs = pairs(args.runs, lambda: measure([sys.executable, "-c", "pass"], ws.env),
                       lambda argv=argv: measure(argv, ws.env))  # type: ignore[misc]
        h, f = med(hs, lambda s: s.wall), med(fs, lambda s: s.wall)
        rows.append(Row("e", f"startup: hanzo-run {label}: wall s (floor = python -c pass)", h, f,
                        "<= 0.25 s", h <= 0.25, "s"))
    return rows


def render(rows: list[Row], command: str) -> str:
    lines = [f"command: {command}", "",
             "| | scenario | hanzo-run | floor | ratio | goal | met | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.scenario} | {r.label} | {r.hanzo:.3f} {r.unit} | {r.floor:.3f} {r.unit} | "
                     f"{r.ratio:.2f} | {r.goal} | {'yes' if r.passed else 'NO'} | {r.note} |")
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    return [int(size) for size in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=SCENARIOS, help=f"which of {SCENARIOS} to run (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="runs per side; the table shows medians")
    parser.add_argument("--requests", type=int, default=5000, help="requests in scenarios a, b, f")
    parser.add_argument("--rate", type=int, default=50, help="scenario c: provider limit per 1 s window")
    parser.add_argument("--limit-requests", type=int, default=1000, help="scenario c: requests")
    parser.add_argument("--items", type=int, default=1_000_000, help="scenario d: items (echo provider)")
    parser.add_argument("--memory-runs", type=int, default=None, help="scenario d: runs (default --runs)")
    parser.add_argument("--scale-sizes", type=_sizes, default=[1000, 10_000, 100_000, 1_000_000],
                        help="scale curve (s): item counts, comma-separated")
    parser.add_argument("--scale-runs", type=int, default=1, help="scale curve: runs per size")
    parser.add_argument("--scale-run-max", type=int, default=100_000,
                        help="scale curve: above this many items, load/validate only (a whole run takes too long)")
    parser.add_argument("--scale-inline-max", type=int, default=100_000,
                        help="scale curve: above this many items, no inline-data job")
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    args = parser.parse_args(argv)
    args.memory_runs = args.memory_runs or args.runs
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    from . import shapes  # its scenarios build on this module's

    rows: list[Row] = []
    tables: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hanzo-bench-") as tmp:
        ws = Workspace(Path(tmp))
        for key in args.scenarios:
            print(f"scenario {key}: {TITLES[key]}", file=sys.stderr)
            if key == "a":
                rows.append(scenario_cpu(ws, args, stream=False, key="a"))
            elif key == "b":
                rows.append(scenario_latency(ws, args))
            elif key == "c":
                rows.append(scenario_limit(ws, args))
            elif key == "d":
                rows.append(scenario_memory(ws, args))
            elif key == "e":
                rows.extend(scenario_startup(ws, args))
            elif key == "f":
                rows.append(scenario_cpu(ws, args, stream=True, key="f"))
            elif key in "ghijk":
                rows.append(shapes.scenario_shape(ws, args, key))
            elif key == "s":
                tables.append(shapes.scale_curve(ws, args))
            elif key == "l":
                tables.append(shapes.breakdown(ws, args))
            else:
                parser.error(f"unknown scenario {key!r}; choose from {SCENARIOS}")
    print("\n\n".join([render(rows, command.strip()) if rows else f"command: {command.strip()}", *tables]))
    if args.json:
        args.json.write_text(json.dumps([{**r.__dict__, "ratio": r.ratio} for r in rows], indent=2))
    return 0
