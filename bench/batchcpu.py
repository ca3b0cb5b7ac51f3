"""``python -m bench.batchcpu``: CPU per item in batch mode (submission + collection) against synchronous mode.

Both run the real ``hanzo-run`` as child processes against the fake provider server of the tests
(tests/fakes/server.py, in this process, so its CPU is not counted): the synchronous run sends one
chat request per item; batch mode is two processes, ``--no-wait`` (build the requests, upload
one JSONL file, create the batch) and ``--resume`` (poll, download the results, parse, check,
price and write them). CPU (user + system) of each child comes from ``os.wait4``; the startup
of a hanzo-run process (``--version``) is measured too and shown subtracted.

    python -m bench.batchcpu --items 2000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from bench.driver import REPO, Sample, measure
from tests.fakes import FakeServer


def provider_file(folder: Path, fake: FakeServer) -> None:
    data = yaml.safe_load((REPO / "providers.d" / "openai.yaml").read_text())
    data["base_url"] = fake.base_url("openai")
    data["limits"] = {"requests": 1_000_000, "window": 1, "concurrency": 64}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "openai.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def job_file(folder: Path, items: int) -> Path:
    path = folder / "bench-batch.yaml"
    # A data file, not inline rows: checking inline rows costs time quadratic in their number.
    (folder / "rows.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(items)))
    path.write_text(yaml.safe_dump({
        "name": "bench-batch", "targets": ["openai/gpt-4o-mini"],
        "prompts": ["Question {{n}}: what is {{n}} squared?"], "data": "rows.jsonl",
        "params": {"max_tokens": 50}, "concurrency": 64, "output": "out.db"}))
    return path


def _ok(sample: Sample, what: str) -> Sample:
    if sample.code != 0:
        raise SystemExit(f"{what} exited {sample.code}: {sample.stderr}")
    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sync_cpu: list[float] = []
    batch_cpu: list[float] = []
    submit_cpu: list[float] = []
    collect_cpu: list[float] = []
    startup: list[float] = []
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        provider_file(work / "providers", fake)
        job = job_file(work, args.items)
        env = {**os.environ, "OPENAI_API_KEY": fake.keys["openai"]}
        hanzo = [sys.executable, "-m", "runner"]
        common = ["--providers-dir", str(work / "providers"), "-q"]
        for n in range(args.runs):
            fake.clear()
            startup.append(_ok(measure([*hanzo, "--version"], env), "startup").cpu)
            sync_cpu.append(_ok(measure([*hanzo, str(job), *common, "--db", str(work / f"sync{n}.db"), "--no-batch"],
                                        env), "sync run").cpu)
            db = ["--db", str(work / f"batch{n}.db")]
            submitted = _ok(measure([*hanzo, str(job), *common, *db, "--batch", "--no-wait"], env), "submit")
            collected = _ok(measure([*hanzo, str(job), *common, *db, "--resume"], env), "collect")
            if fake.batch.chat_requests() != args.items:  # the sync run's, none of the batch's
                raise SystemExit(f"expected {args.items} chat requests, saw {fake.batch.chat_requests()}")
            submit_cpu.append(submitted.cpu)
            collect_cpu.append(collected.cpu)
            batch_cpu.append(submitted.cpu + collected.cpu)
    base = statistics.median(startup)
    per = 1000 / args.items

    def show(name: str, values: list[float], processes: int) -> str:
        median = statistics.median(values)
        return (f"{name:<28} {median * per:8.3f} ms/item   {(median - processes * base) * per:8.3f} ms/item "
                f"without startup")

    print(f"{args.items} items, median of {args.runs} runs; hanzo-run startup {base * 1000:.0f} ms CPU")
    print(show("synchronous", sync_cpu, 1))
    print(show("batch (submit + collect)", batch_cpu, 2))
    print(show("  batch submit (--no-wait)", submit_cpu, 1))
    print(show("  batch collect (--resume)", collect_cpu, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
