"""Issue 20, the pages: Runs, Run (targets, charts, the item grid with its filters and keyset pages),
Item and Compare, driven through HTTP over a database a real run wrote (tests/view/conftest.py)."""

from __future__ import annotations

import re
import sqlite3
from html import unescape
from pathlib import Path

from starlette.testclient import TestClient

from tests.conftest import hanzo, point_at, query, write_job, write_providers
from tests.fakes import FakeServer
from tests.view.conftest import app_client


def rows_of(html: str, table: str) -> list[str]:
    """The body rows of the table with id ``table`` as text: tags stripped, entities read, whitespace squeezed."""
    body = html[html.index(f'id="{table}"'):]
    body = body[body.index("<tbody>"):body.index("</tbody>")]
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in re.split(r"<tr\b[^>]*>", body)[1:]]


def test_runs_page_lists_every_run_with_its_figures(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    [run] = rows_of(page.text, "runs")
    assert re.fullmatch(r"1 view completed \S+ [\d.]+ s 6 5 1 16\.7% [\d.]+", run), run
    assert 'href="/runs/1"' in page.text
    assert "data-live-run" not in page.text  # nothing to update: the run finished


def test_a_running_run_updates_live_from_the_json_endpoint(client: TestClient, run_db: Path) -> None:
    conn = sqlite3.connect(run_db)
    with conn:
        conn.execute("UPDATE runs SET status = 'running', finished_at = NULL")
    conn.close()
    assert 'data-live-run="1"' in client.get("/").text
    assert 'data-live-run="1"' in client.get("/runs/1").text
    figures = client.get("/api/runs?id=1").json()
    assert figures == {"runs": [{"id": 1, "live": True, "shown": {
        "status": "running", "items": "6", "ok": "5", "errors": "1", "pass_rate": "16.7%",
        "cost": figures["runs"][0]["shown"]["cost"], "duration": "-", "batches": ""}}]}
    assert client.get("/api/runs?id=x").status_code == 400
    assert client.get("/api/runs?id=9").json() == {"runs": []}
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "/api/runs?" in script.text


def test_run_page_compares_the_targets_with_charts(client: TestClient) -> None:
    page = client.get("/runs/1")
    assert page.status_code == 200
    openai, anthropic = rows_of(page.text, "comparison")
    # items, ok rate, errors, pass rate, then latency figures and tokens
    assert openai.startswith("openai/gpt-4o-mini 3 100.0% 0 33.3% ")
    assert anthropic.startswith("anthropic/claude-haiku-4-5 3 66.7% 1 0.0% ")
    charts = re.findall(r'<figure class="chart">\s*<figcaption>([^<]+)</figcaption>', page.text)
    assert charts == ["Latency, ms (p50; lighter: p95)", "Pass rate", "Cost per 1,000 items, $"]
    assert page.text.count('class="bar"') == 6  # three charts, two targets


def test_run_page_grid_has_a_row_per_item_and_a_column_per_target(client: TestClient) -> None:
    page = client.get("/runs/1")
    head = page.text[page.text.index('id="grid"'):]
    assert re.findall(r'<th class="text">([^<]+)</th>', head[:head.index("</thead>")]) == [
        "item", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    paris, rome, oslo = rows_of(page.text, "grid")
    assert paris.startswith("capital row 0 ")
    assert "pass" in paris and "gpt-4o-mini says: Capital of Paris?" in paris
    assert "error" in paris and "MAX_RETRIES_EXCEEDED: gave up after 3 attempts" in paris
    assert rome.startswith("capital row 1 ") and rome.count("✗ contains : answer does not contain 'Paris'") == 2
    assert oslo.startswith("capital row 2 ")
    assert 'href="/runs/1/item?row=0&amp;prompt=capital&amp;repeat=0"' in page.text


def test_run_page_filters_failed_target_and_text(client: TestClient) -> None:
    def items(query: str) -> list[str]:
        page = client.get(f"/runs/1?{query}")
        assert page.status_code == 200, page.text
        return [] if 'id="no-items"' in page.text else [r.split(" ", 3)[2] for r in rows_of(page.text, "grid")]

    assert items("failed=1") == ["0", "1", "2"]  # row 0: anthropic's request failed
    assert items("failed=1&target=openai/gpt-4o-mini") == ["1", "2"]
    assert items("target=openai/gpt-4o-mini") == ["0", "1", "2"]
    assert items("q=Oslo") == ["2"]
    assert items("q=oslo") == ["2"]  # any case
    assert items("q=100%25") == []  # % is a character, not a wildcard
    one = client.get("/runs/1?target=openai/gpt-4o-mini").text
    assert "anthropic/claude-haiku-4-5</th>" not in one  # one target, one column
    assert client.get("/runs/1?target=nobody/x").status_code == 404


def test_run_page_pages_by_keyset(client: TestClient) -> None:
    first = client.get("/runs/1?size=2")
    assert [r.split(" ", 3)[2] for r in rows_of(first.text, "grid")] == ["0", "1"]
    assert 'rel="prev"' not in first.text
    after = re.search(r'rel="next" href="\?([^"]+)"', first.text)
    assert after is not None
    second = client.get("/runs/1?" + after.group(1).replace("&amp;", "&"))
    assert [r.split(" ", 3)[2] for r in rows_of(second.text, "grid")] == ["2"]
    assert 'rel="next"' not in second.text
    before = re.search(r'rel="prev" href="\?([^"]+)"', second.text)
    assert before is not None
    assert "size=2" in before.group(1)  # the page size goes along
    back = client.get("/runs/1?" + before.group(1).replace("&amp;", "&"))
    assert [r.split(" ", 3)[2] for r in rows_of(back.text, "grid")] == ["0", "1"]


def test_unknown_runs_and_items_are_404_pages(client: TestClient) -> None:
    for path in ("/runs/9", "/runs/9/item?row=0&prompt=capital&repeat=0", "/runs/1/item?row=7&prompt=capital&repeat=0",
                 "/compare?a=1&b=9"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "<h1>404</h1>" in page.text
    assert client.get("/runs/1/item?row=0").status_code == 400
    assert client.get("/compare?a=1").status_code == 400


def test_item_page_shows_messages_answers_and_every_attempt(client: TestClient) -> None:
    page = client.get("/runs/1/item?row=0&prompt=capital&repeat=0")
    assert page.status_code == 200
    messages = page.text[page.text.index('id="messages"'):page.text.index("<h2>Answers</h2>")]
    assert "USER" in messages.upper() and "Capital of Paris? &lt;script&gt;" in messages
    openai, anthropic = page.text.split('class="target-answer"')[1:]
    assert "openai/gpt-4o-mini" in openai and "gpt-4o-mini says: Capital of Paris?" in openai
    attempts = re.findall(r"<tr><td>(\d+)</td><td class=\"text\">answer</td>.*?<td>(\d+|-)</td>\s*<td class=\"text\">"
                          r"([A-Z_]*)</td>", anthropic, re.S)
    assert [(n, status, code) for n, status, code in attempts] == [
        ("1", "500", "SERVER_ERROR"), ("2", "500", "SERVER_ERROR"), ("3", "500", "SERVER_ERROR")]
    assert "MAX_RETRIES_EXCEEDED (HTTP 500)" in anthropic


def test_item_page_says_when_the_job_changed_and_shows_the_stored_prompt(client: TestClient, isolated: Path) -> None:
    job = isolated / "job.yaml"
    job.write_text(job.read_text().replace("Capital of", "Which is the capital of"))
    page = client.get("/runs/1/item?row=1&prompt=capital&repeat=0")
    assert "the job file changed since this run (no item of it hashes to this one&#39;s key)" in page.text
    assert re.search(r'id="prompt">Capital of Rome\? &lt;script&gt;', page.text)


def test_compare_page_lists_regressions_first(run_db: Path, fake: FakeServer, fake_providers: Path,
                                              isolated: Path) -> None:
    fake.add_fault("500", flavor="openai", times=3)  # run 2: openai's first item (Paris) errors
    again = hanzo(isolated / "job.yaml", "--providers-dir", fake_providers, "--quiet")
    assert again.returncode == 1, again.stderr
    assert query(run_db, "SELECT count(*) FROM results WHERE run_id = 2 AND status != 'ok'") == [(1,)]
    with app_client(run_db) as client:
        page = client.get("/compare?a=1&b=2")
        assert page.status_code == 200
        assert re.search(r'id="verdict">run 2 regressed against run 1: 1 item went from ok to error', page.text)
        # items A, items B, unchanged, then pass → fail, ok → error, fail → pass, error → ok, only in A, only in B
        assert sorted(rows_of(page.text, "totals")) == ["anthropic/claude-haiku-4-5 3 3 2 0 0 0 1 0 0",  # Paris: fixed
                                                        "openai/gpt-4o-mini 3 3 2 0 1 0 0 0 0"]
        assert re.search(r"<th[^>]*>pass → fail</th><th[^>]*>ok → error</th>", page.text)  # regressions first
        changes = {t: c for t, c in re.findall(r'<h2 id="t\d">([^<]+)</h2>\s*(<table class="changes">.*?</table>)',
                                               page.text, re.S)}
        assert "ok → error" in changes["openai/gpt-4o-mini"] and "error → ok" in changes["anthropic/claude-haiku-4-5"]
        assert 'href="/runs/2/item?row=0&amp;prompt=capital&amp;repeat=0"' in page.text
        # The Run page offers the run before as the one to compare with.
        assert re.search(r'name="a" min="1" required value="1"', client.get("/runs/2").text)


def test_item_page_shows_an_image_as_a_thumbnail(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                                  isolated: Path) -> None:
    import shutil

    from tests.conftest import REPO, write_job

    (isolated / "images").mkdir()
    shutil.copy(REPO / "jobs" / "images" / "red-square.png", isolated / "images" / "red-square.png")
    job = write_job(isolated, {"name": "vision", "targets": ["openai/gpt-4o-mini"], "output": "runs.db", "prompts": [
        {"id": "colour", "messages": [{"role": "user", "content": [
            {"text": "What colour is this square?"}, {"image": "images/red-square.png"}]}]}]})
    assert hanzo(job, "--providers-dir", fake_providers, "--quiet").returncode == 0
    with app_client(isolated / "runs.db") as client:
        page = client.get("/runs/1/item?row=-1&prompt=colour&repeat=0")
    assert page.status_code == 200
    assert re.search(r'<img class="thumb" src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="images/red-square.png"',
                     page.text)
    assert "What colour is this square?" in page.text


def test_item_page_shows_tool_calls_and_json_answers(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                                     isolated: Path) -> None:
    from tests.conftest import write_job

    tools = write_job(isolated, {
        "name": "tools", "targets": ["openai/gpt-4o-mini"], "output": "runs.db", "data": [{"city": "Paris"}],
        "tools": [{"name": "get_weather", "description": "Weather of a city", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "prompts": [{"id": "ask", "text": "Weather in {{city}}?", "tool_choice": "required"}]}, "tools.yaml")
    extract = write_job(isolated, {
        "name": "extract", "targets": ["openai/gpt-4o-mini"], "output": "runs.db",
        "response_schema": {"title": "person", "type": "object", "required": ["name", "age"],
                            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}},
        "prompts": [{"id": "person", "text": "Extract the person: Ada Lovelace, 36."}]}, "extract.yaml")
    for job in (tools, extract):
        done = hanzo(job, "--providers-dir", fake_providers, "--quiet")
        assert done.returncode == 0, done.stderr
    with app_client(isolated / "runs.db") as client:
        called = client.get("/runs/1/item?row=0&prompt=ask&repeat=0").text
        answered = client.get("/runs/2/item?row=-1&prompt=person&repeat=0").text
    calls = called[called.index("<h4>Tool calls</h4>"):]
    assert "&#34;name&#34;: &#34;get_weather&#34;" in calls and "city" in calls
    assert "Messages as sent" in called and "Weather in Paris?" in called
    json_answer = answered[answered.index("<h4>JSON</h4>"):]
    assert re.search(r"<pre>\{\n  &#34;name&#34;: ", json_answer)  # pretty-printed


def test_a_finished_runs_figures_are_summed_once_when_it_finishes(run_db: Path) -> None:
    """The first screen of a finished run reads the figures saved at its end, not its rows; a run
    that finished again since (a resume) has other figures, and they are summed anew."""
    [(finished_at, saved)] = query(run_db, "SELECT finished_at, targets FROM run_figures WHERE run_id = 1")
    assert query(run_db, "SELECT finished_at FROM runs WHERE id = 1") == [(finished_at,)]
    conn = sqlite3.connect(run_db)
    with conn:  # a marker only the saved figures hold
        conn.execute("UPDATE run_figures SET targets = replace(targets, '\"openai/gpt-4o-mini\"', '\"saved/x\"')")
    conn.close()
    with app_client(run_db) as client:
        assert ">saved/x</a>" in client.get("/runs/1").text
    conn = sqlite3.connect(run_db)
    with conn:
        conn.execute("UPDATE runs SET finished_at = '2030-01-01T00:00:00.000Z'")  # finished again
    conn.close()
    with app_client(run_db) as client:
        page = client.get("/runs/1").text
        assert ">saved/x</a>" not in page and ">openai/gpt-4o-mini</a>" in page


def test_runs_and_run_pages_show_the_batch_state(client: TestClient, run_db: Path) -> None:
    conn = sqlite3.connect(run_db)
    with conn:
        for status in ("running", "running", "ended"):
            conn.execute("INSERT INTO batches (run_id, target, provider, model, api, tag, status, request_count,"
                         " created_at) VALUES (1, 'openai/gpt-4o-mini', 'openai', 'gpt-4o-mini', 'openai', 't', ?, 3,"
                         " '2026-01-01T00:00:00Z')", [status])
    conn.close()
    [run] = rows_of(client.get("/").text, "runs")
    assert run.endswith("1 ended, 2 running")
    [figures] = rows_of(client.get("/runs/1").text, "run-figures")
    assert figures.endswith("1 ended, 2 running")


def test_judge_scores_and_reasons_show_in_the_grid_and_on_the_item_page(fake: FakeServer, fake_providers: Path,
                                                                        keys: dict[str, str], isolated: Path) -> None:
    from tests.conftest import write_job

    fake.add_reply('{"pass": true, "score": 0.9, "reason": "names Paris"}', flavor="anthropic", contains="France")
    fake.add_reply('{"pass": false, "score": 0.1, "reason": "no Tokyo"}', flavor="anthropic", contains="Japan")
    job = write_job(isolated, {
        "name": "judged", "targets": ["openai/gpt-4o-mini"], "judge_target": "anthropic/claude-haiku-4-5",
        "data": [{"country": "France", "capital": "Paris"}, {"country": "Japan", "capital": "Tokyo"}],
        "prompts": [{"id": "cap", "text": "What is the capital of {{country}}?",
                     "checks": [{"judge": {"rubric": "Names {{capital}}."}}]}], "output": "runs.db"})
    assert hanzo(job, "--providers-dir", fake_providers, "--quiet").returncode == 1
    with app_client(isolated / "runs.db") as client:
        france, japan = rows_of(client.get("/runs/1").text, "grid")
        item = client.get("/runs/1/item?row=1&prompt=cap&repeat=0").text
    assert "⚖ judge 0.9: anthropic/claude-haiku-4-5: names Paris (score 0.9)" in france
    assert "⚖ judge 0.1: anthropic/claude-haiku-4-5: no Tokyo (score 0.1)" in japan and "fail" in japan
    checks = rows_of(item, "checks")  # every check's outcome, from results.checks
    assert checks == ["judge False 0.1 anthropic/claude-haiku-4-5: no Tokyo (score 0.1)"]
    assert re.search(r'<td>\d+</td><td class="text">judge</td>', item)  # the grader's HTTP attempt


def test_providers_dir_shows_a_provider_only_that_folder_has(fake: FakeServer, keys: dict[str, str],
                                                             isolated: Path) -> None:
    # `view --providers-dir` as `run --providers-dir`: the run's provider is on the Providers and Models pages,
    # and its item's messages are rebuilt from the job, which loads only with that folder.
    acme = point_at(fake, "openai")
    acme.update(id="acme", name="Acme")
    folder = write_providers(isolated / "elsewhere", {"acme": acme})
    job = write_job(isolated, {"targets": ["acme/gpt-4o-mini"], "prompts": [{"id": "q", "text": "Capital of {{c}}?"}],
                               "data": [{"c": "Peru"}], "output": "runs.db"})
    key = {"HANZO_API_KEY_ACME": fake.keys["openai"]}
    assert hanzo(job, "--providers-dir", folder, "--quiet", env=key).returncode == 0
    item = "/runs/1/item?row=0&prompt=q&repeat=0"
    with app_client(isolated / "runs.db") as without:
        assert "the job file no longer loads" in without.get(item).text
        assert 'id="provider-acme"' not in without.get("/providers").text
    with app_client(isolated / "runs.db", providers_dirs=(str(folder),)) as client:
        messages = client.get(item).text
        assert "Capital of Peru?" in messages[messages.index('id="messages"'):messages.index("<h2>Answers</h2>")]
        assert 'id="provider-acme"' in client.get("/providers").text
        assert 'data-model="gpt-4o-mini"' in client.get("/models?provider=acme").text
