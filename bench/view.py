"""``hanzo-run view`` at scale: the Run page of a 100,000-item run, first screen, timed.

Builds a results database with one run of ``--items`` results (``--targets`` targets, one
prompt, the rest data rows; a tenth fail their check, one in fifty errors), starts the real
``hanzo-run view`` on it, and times GET /runs/1 (the comparison, the charts and the first
page of the item grid): the first request, then the median of ``--repeat`` more.

    python -m bench.view --items 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from runner.store.database import RunStore, open_db, utcnow
from runner.store.records import ResultRow

WORDS = "the capital city river mountain answer model paris rome oslo berlin madrid lisbon".split()


def build(path: Path, items: int, targets: int, seed: int = 7) -> None:
    """One completed run of ``items`` results across ``targets`` targets."""
    rng = random.Random(seed)
    db = open_db(path)
    store = RunStore.start(db, job_name="bench-view", job_path=str(path.with_suffix(".yaml")), job_hash="x",
                           items_total=items, version="bench", pid=0, options="{}")
    names = [f"provider{t}/model-{t}" for t in range(targets)]
    rows_per_target = items // targets
    failed = json.dumps([{"check": "contains", "reason": "answer does not contain 'Paris'"}])
    now = utcnow()
    batch: list[ResultRow] = []
    for row in range(rows_per_target):
        for t, target in enumerate(names):
            provider, _, model = target.partition("/")
            error = rng.random() < 0.02
            passed = None if error else int(rng.random() > 0.1)
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
            batch.append(ResultRow(
                run_id=store.run_id, item_key=f"{row:08d}-{t}", target=target, provider=provider, model=model,
                prompt_id="capital", row_index=row, repeat_index=0, prompt=f"What is the capital of country {row}?",
                status="error" if error else "ok", response_text=None if error else text, finish_reason="stop",
                error_code="SERVER_ERROR" if error else None, error_message="HTTP 503" if error else None,
                http_status=503 if error else 200, attempts=1, latency_ms=rng.lognormvariate(6, 0.5),
                ttft_ms=rng.lognormvariate(5, 0.5), input_tokens=12, output_tokens=len(text.split()),
                cost_usd=None if error else 0.00001 * (t + 1), passed=passed, started_at=now, finished_at=now,
                failed_checks=failed if passed == 0 else None, price_source="bench"))
            if len(batch) >= 10_000:
                store.write(batch, [])
                batch = []
    store.write(batch, [])
    store.finish("completed")
    db.close()


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen([sys.executable, "-m", "runner", "view", "--db", str(db), "--port", "0", "--no-open"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def measure(db: Path, repeat: int) -> tuple[list[float], list[float], int]:
    """A fresh server's Run page, ``repeat + 1`` times: wall ms and server CPU ms of each, the page's size."""
    server, url = serve(db)
    try:
        base = url.split("/?")[0]
        with httpx.Client(follow_redirects=True, timeout=60) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert client.get(url).status_code == 200  # the token, traded for the cookie
                    break
                except httpx.ConnectError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            times, cpu = [], []
            for _ in range(repeat + 1):
                started, used = time.perf_counter(), cpu_ms(server.pid)
                page = client.get(f"{base}/runs/1")
                times.append((time.perf_counter() - started) * 1000)
                cpu.append(cpu_ms(server.pid) - used)
                assert page.status_code == 200, page.text[:500]
    finally:
        server.terminate()
        server.wait(timeout=10)
    return times, cpu, len(page.content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.view", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    print("| Run page | items | first: wall ms | first: server CPU ms | then: median wall ms | median CPU ms | size |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "view.db"
        started = time.perf_counter()
        build(db, args.items, args.targets)
        print(f"built {args.items:,} results in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for how in ("figures saved at finish", "figures summed at first view"):
            if how == "figures summed at first view":  # a run finished by a hanzo-run that saved none
                conn = sqlite3.connect(db)
                with conn:
                    conn.execute("DELETE FROM run_figures")
                conn.close()
            times, cpu, size = measure(db, args.repeat)
            print(f"| {how} | {args.items:,} | {times[0]:.0f} | {cpu[0]:.0f} | {statistics.median(times[1:]):.0f} |"
                  f" {statistics.median(cpu[1:]):.0f} | {size / 1024:.0f} KiB |", flush=True)
    print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
