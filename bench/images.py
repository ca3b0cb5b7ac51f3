"""Peak memory of a job over many images: are they read lazily, one request at a time?

    python -m bench.images --items 100000 --distinct 1000

Writes ``--distinct`` PNG files (``--size`` bytes each) and a data file of ``--items`` rows that
name them, then runs hanzo-run (a real run: every result in SQLite) against the loopback mock
server with a prompt whose image is ``images/{{file}}``, and prints the peak RSS of the run at
a tenth of the items and at all of them: flat means no image is held after its request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from .driver import Mock, measure

PNG = b"\x89PNG\r\n\x1a\n"


def write_inputs(folder: Path, items: int, distinct: int, size: int) -> Path:
    images = folder / "images"
    images.mkdir()
    for i in range(distinct):
        (images / f"img{i}.png").write_bytes(PNG + os.urandom(size - len(PNG)))
    with (folder / "rows.jsonl").open("w") as rows:
        for i in range(items):
            rows.write(json.dumps({"file": f"img{i % distinct}.png"}) + "\n")
    return folder


def run(folder: Path, url: str, items: int) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one hanzo-run process over the first ``items`` rows."""
    providers = folder / "providers"
    providers.mkdir(exist_ok=True)
    (providers / "mock.yaml").write_text(yaml.safe_dump({
        "id": "mock", "name": "bench mock", "kind": "local", "protocol": "openai", "base_url": f"{url}/v1",
        "limits": {"requests": 1_000_000, "window": 1, "concurrency": 64}, "models": {"default": "bench"}}))
    rows = folder / f"rows-{items}.jsonl"
    with (folder / "rows.jsonl").open() as src, rows.open("w") as dst:
        for _, line in zip(range(items), src, strict=False):
            dst.write(line)
    job = folder / f"job-{items}.yaml"
    job.write_text(yaml.safe_dump({
        "targets": ["mock/bench"], "data": rows.name, "concurrency": 64, "output": f"out-{items}.db",
        "prompts": [{"id": "look", "messages": [{"role": "user", "content": [
            {"text": "What is in this picture?"}, {"image": "images/{{file}}"}]}]}]}))
    sample = measure([sys.executable, "-m", "runner", "run", str(job), "--quiet", "--providers-dir", str(providers)])
    if sample.code != 0:
        raise SystemExit(f"hanzo-run failed ({sample.code}): {sample.stderr}")
    return sample.wall, sample.rss_mb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=1000, help="how many image files the rows name")
    parser.add_argument("--size", type=int, default=64 * 1024, help="bytes per image")
    args = parser.parse_args(argv)
    mock = Mock()
    try:
        with tempfile.TemporaryDirectory(prefix="hanzo-images-") as tmp:
            folder = write_inputs(Path(tmp), args.items, args.distinct, args.size)
            for items in (max(args.items // 10, 1), args.items):
                wall, peak = run(folder, mock.url, items)
                print(f"{items:>9,} items, {args.distinct:,} images of {args.size // 1024} KB: "
                      f"{wall:6.1f} s, peak RSS {peak:.1f} MB")
    finally:
        mock.close()


if __name__ == "__main__":
    main()
