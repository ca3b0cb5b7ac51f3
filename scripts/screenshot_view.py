"""Screenshot the pages of ``hanzo-run view`` for the README, from runs made offline against the test
suite's fake provider server (no key, no network), in headless Chromium driven by Playwright.

    .venv/bin/python scripts/screenshot_view.py [--out docs]

Needs the [test] extra (Playwright's Python package, the fake server) and Debian's chromium
(apt-get install -y chromium); no Playwright browser download. Writes view-run.png,
view-providers.png and view-models.png into --out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fakes: the fake provider server the runs are made against

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
JOB = """\
name: capitals
targets: [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, groq/llama-3.1-8b-instant]
prompts:
  - id: capital
    text: "What is the capital of {{country}}? Answer in one word."
data:
  - {country: France, expected: Paris}
  - {country: Italy, expected: Rome}
  - {country: Norway, expected: Oslo}
  - {country: Japan, expected: Tokyo}
checks:
  - contains: "{{expected}}"
output: runs.db
"""


def make_run(work: Path, fake: object) -> Path:
    """A run of one job against the fake server, with right and wrong answers."""
    import yaml

    from runner.api import run_job, use
    from runner.keys.store import KeyStore, host_of
    from tests.conftest import FLAVORS, point_at

    providers = work / "providers"
    providers.mkdir()
    for provider_id in FLAVORS:
        data = point_at(fake, provider_id)  # type: ignore[arg-type]
        (providers / f"{provider_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    os.environ["HANZO_RUN_PROVIDERS_DIR"] = str(providers)
    keys = fake.keys  # type: ignore[attr-defined]
    KeyStore().set("openai", keys["openai"], host_of(fake.base_url("openai")))  # type: ignore[attr-defined]
    os.environ["ANTHROPIC_API_KEY"] = keys["anthropic"]
    os.environ["GROQ_API_KEY"] = keys["groq"]
    job = work / "capitals.yaml"
    job.write_text(JOB)
    for country, capital in (("France", "Paris"), ("Italy", "Rome"), ("Norway", "Oslo")):
        fake.add_reply(f"{capital}.", contains=country)  # type: ignore[attr-defined]  # Japan: a wrong answer
    run_job(job)
    use("openai", "gpt-4o-mini")
    return work / "runs.db"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs chromium (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from runner.view.server import serving
    from tests.fakes import FakeServer

    with tempfile.TemporaryDirectory() as tmp, FakeServer() as fake:
        work = Path(tmp)
        os.environ["HANZO_RUN_HOME"] = str(work / "home")  # keys and settings of this demo only
        for name in [n for n in os.environ if n.endswith("_API_KEY") or n.startswith("HANZO_API_KEY_")]:
            del os.environ[name]  # never a real key's last 4 characters in a picture
        os.chdir(work)
        db = make_run(work, fake)
        args.out.mkdir(parents=True, exist_ok=True)
        with serving(db) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            shots = {"view-run.png": "/runs/1", "view-providers.png": "/providers",
                     "view-models.png": "/models?provider=openai"}
            for name, path in shots.items():
                page.goto(url.split("/?")[0] + path)
                page.screenshot(path=str(args.out / name), full_page=False)
                print(f"wrote {args.out / name}", file=sys.stderr)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
