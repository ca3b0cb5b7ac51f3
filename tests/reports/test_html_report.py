"""``report --html`` renders in a real headless Chromium: charts, tables, no console errors, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import hanzo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
# Without the background-networking flags Chromium's own connections fail when the network is closed.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
CONSOLE = re.compile(r":CONSOLE[:(]")


def render(page: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every console message the page produced."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                               "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


def test_the_harness_sees_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); undefinedFunction();</script></body></html>")
    _, console = render(page)
    assert len(console) == 2 and '"boom"' in console[0] and "undefinedFunction" in console[1]


def test_html_report_renders_offline_without_console_errors(fixed_runs: Path, tmp_path: Path) -> None:
    """The Run page of hanzo-run view as a file: tables, SVG charts, the item grid; no script at all."""
    page = tmp_path / "report.html"
    done = hanzo("report", "1", "--db", fixed_runs, "--html", page)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", html), "external resource"
    assert "@import" not in html and "fonts.googleapis" not in html
    assert "<script" not in html and "/static/" not in html and 'href="/' not in html  # nothing of the server

    dom, console = render(page)
    assert console == []
    comparison = dom[dom.index('id="comparison"'):dom.index("</table>", dom.index('id="comparison"'))]
    assert comparison.count("<tr>") == 3 and "75.0%" in comparison and "unpriced" in comparison
    assert ">openai/a<" in comparison and ">local/b<" in comparison
    assert dom.count("<svg") == 3 and dom.count('class="bar"') == 6  # latency, pass rate, and cost of openai/a only
    grid = dom[dom.index('id="grid"'):]
    assert "MAX_RETRIES_EXCEEDED" in grid and "answer does not contain 'Paris'" in grid
    assert grid.count('class="text cell') == 2 * 6  # every item of both targets: 6 rows, 2 columns


def test_html_report_of_forty_items_is_small(fixed_runs: Path, tmp_path: Path) -> None:
    from runner.store.database import open_db
    from tests.conftest import _result

    db = open_db(fixed_runs)
    with db.atomic():
        db["results"].insert_all(_result(1, 10 + n, "openai/a", "ok", 100, 10, (10, 20), 0.001, 1) for n in range(40))
    db.close()
    page = tmp_path / "report.html"
    assert hanzo("report", "1", "--db", fixed_runs, "--html", page).returncode == 0
    assert page.stat().st_size < 1_000_000
    assert page.read_text().count("answer 49") == 1
