"""``hanzo-run view`` in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright's
Python package; no browser download) against the app served by uvicorn on 127.0.0.1. Every page
renders, runs -> run -> item -> compare is clicked through, a key is set and removed against the
fake provider server, and no page logs a console error."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner.keys.store import KeyStore
from runner.view.server import serving
from tests.conftest import hanzo
from tests.fakes import FakeServer
from tests.view.conftest import SCRIPT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
playwright = pytest.importorskip("playwright.sync_api", reason="needs Playwright's Python package (the [test] extra)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")


@dataclass
class Console:
    """What the pages logged: any error fails the test."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        page.on("response", lambda r: self.errors.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_every_page_renders_and_runs_lead_to_run_item_and_compare(browser: Any, run_db: Path, fake: FakeServer,
                                                                  fake_providers: Path, isolated: Path) -> None:
    again = hanzo(isolated / "job.yaml", "--providers-dir", fake_providers, "--quiet")  # run 2, to compare
    assert again.returncode in (0, 1), again.stderr
    console = Console()
    with serving(run_db) as url:
        page = browser.new_page()
        console.watch(page)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        assert "token" not in page.url  # traded for a cookie
        assert page.locator("table a[href='/runs/1']").count() > 0
        page.click("table a[href='/runs/1'] >> nth=0")
        assert page.url.endswith("/runs/1")
        assert "run 1" in page.inner_text("h1")
        assert SCRIPT in page.inner_text("#grid")  # the answer's <script> is text on the page, not run
        page.click("#grid a[href*='/runs/1/item'] >> nth=0")
        assert "/runs/1/item?" in page.url
        assert "Messages as sent" in page.inner_text("main")
        page.go_back()
        page.goto(url.split("/?")[0] + "/runs/2")
        page.click(".compare-form button")
        assert "/compare?" in page.url and "run 2" in page.inner_text("h1")
        for path in ("/providers", "/providers?tab=local", "/models", "/models?provider=ollama"):
            page.goto(url.split("/?")[0] + path)
            assert page.locator("main h1").count() == 1
        assert dialogs == []
    assert console.errors == [], "\n".join(console.errors)


def test_set_show_and_remove_a_key_in_the_browser(browser: Any, run_db: Path, fake: FakeServer,
                                                  providers_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY",
                 "SAMBANOVA_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # the keys this page sets come from the store, not the run's env
    console = Console()
    with serving(run_db) as url:
        page = browser.new_page()
        console.watch(page)
        page.goto(url)
        page.click("header nav >> text=Providers")
        assert page.url.endswith("/providers")
        assert "only to the host of the provider" in page.inner_text("#key-notice")

        key_box = page.locator("#key-groq")
        key_box.fill("gsk-not-the-right-key-0000")
        assert key_box.get_attribute("type") == "password"
        page.click("button.show-key[data-for=key-groq]")
        assert key_box.get_attribute("type") == "text"
        page.click("button.show-key[data-for=key-groq]")
        assert key_box.get_attribute("type") == "password"
        page.click("#save-groq")
        assert "groq: key not saved: the key was refused" in page.inner_text("[role=alert]")
        assert KeyStore().get("groq") is None

        page.fill("#key-groq", fake.keys["groq"])
        page.click("#save-groq")
        assert "groq: key checked against the provider and saved" in page.inner_text("[role=status]")
        assert page.inner_text("#provider-groq .key-last4") == "…groq"
        assert fake.keys["groq"] not in page.content()
        assert KeyStore().get("groq") is not None

        page.click("#remove-groq")
        assert "groq: key removed from the store" in page.inner_text("[role=status]")
        assert KeyStore().get("groq") is None

        page.click("#tab-local")
        assert "llama3.2:latest" in page.inner_text("#provider-ollama")
        page.click("header nav >> text=Models")
        page.click(".tabs >> text=Ollama")
        page.wait_for_selector("tr.model-row")
        assert page.locator("tr.model-row").count() == 2
        page.wait_for_load_state("load")  # the filter's script is attached before anything is typed
        page.fill("#model-filter", "qwen")
        page.wait_for_selector("tr[data-model='llama3.2:latest']", state="hidden")
        assert page.locator("tr.model-row:visible").count() == 1
        page.click("tr[data-model='qwen2.5:7b'] >> text=Use")
        assert "ollama: default model is now qwen2.5:7b" in page.inner_text("[role=status]")
    assert console.errors == [], "\n".join(console.errors)
