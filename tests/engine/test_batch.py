"""Batch mode (issue 12) against the fake server's batch APIs: submission, collection, resume, costs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import run_job
from tests.conftest import dict_rows as rows
from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.fakes import FakeServer

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash-lite"}
PRICES = {"openai": (0.15, 0.60), "anthropic": (1.00, 5.00), "gemini": (0.10, 0.40)}  # USD per 1M, provider files


def batch_job(folder: Path, providers: list[str], n: int, **extra: Any) -> Path:
    return write_job(folder, {
        "name": "batched",
        "targets": [f"{p}/{MODELS[p]}" for p in providers],
        "prompts": [{"id": "q", "text": "Question number {{n}}: what is {{n}} squared?"}],
        "data": [{"n": i} for i in range(n)],
        "params": {"max_tokens": 50},
        "batch": True,
        "output": "out.db",
        **extra,
    })


@pytest.fixture
def batch_providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "batch-providers", {p: point_at(fake, p) for p in (*MODELS, "groq")})


def run(job: Path, providers: Path, **options: Any) -> Any:
    return run_job(job, providers_dirs=(str(providers),), poll_interval=0.01, **options)


def test_three_providers_by_batch_out_of_order_at_half_price(fake: FakeServer, batch_providers: Path,
                                                               keys: dict[str, str], isolated: Path) -> None:
    fake.batch.shuffle = True
    fake.batch.polls_until_done = 2
    job = batch_job(isolated, list(MODELS), 100)
    outcome = run(job, batch_providers)
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 300, 0)
    assert fake.batch.chat_requests() == 0
    results = rows(isolated / "out.db", "SELECT * FROM results")
    assert len(results) == 300
    created = {b.id: b for b in fake.batch.created()}
    assert {f: len(fake.batch.created(f)) for f in MODELS} == {"openai": 1, "anthropic": 1, "gemini": 1}
    for r in results:
        assert r["status"] == "ok" and r["via"] == "batch"
        assert r["response_text"] == f"{r['model']} says: {r['prompt']}"  # matched to its own prompt
        assert r["batch_id"] in created and created[r["batch_id"]].flavor == r["provider"]
        price_in, price_out = PRICES[r["provider"]]
        sync_cost = (r["input_tokens"] * price_in + r["output_tokens"] * price_out) / 1e6
        assert r["cost_usd"] == pytest.approx(sync_cost / 2)
        assert r["price_source"].endswith("(batch 50%)")
        assert r["latency_ms"] is None
    batches = rows(isolated / "out.db", "SELECT * FROM batches ORDER BY id")
    assert [(b["provider"], b["status"], b["request_count"], b["ok_count"]) for b in batches] == [
        ("openai", "completed", 100, 100), ("anthropic", "completed", 100, 100), ("gemini", "completed", 100, 100)]
    assert all(b["collected_at"] and b["provider_batch_id"] in created for b in batches)


def test_no_wait_submits_then_resume_exits_75_until_the_batches_end(fake: FakeServer, batch_providers: Path,
                                                                    keys: dict[str, str], isolated: Path) -> None:
    fake.batch.polls_until_done = 2
    job = batch_job(isolated, ["openai", "anthropic"], 10)
    first = hanzo(job, "--providers-dir", batch_providers, "--no-wait", timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ("submitted 2 batches (run 1); collect with: "
                                    f"hanzo-run {job} --resume 1 --providers-dir {batch_providers}")
    assert rows(isolated / "out.db", "SELECT status FROM runs") == [{"status": "submitted"}]
    codes = []
    for _ in range(5):
        again = hanzo(job, "--providers-dir", batch_providers, "--resume", timeout=60)
        codes.append(again.returncode)
        if again.returncode != 75:
            break
        assert "2 batches still running (run 1)" in again.stderr
    assert codes == [75, 75, 0], again.stderr
    assert len(fake.batch.created()) == 2 and fake.batch.chat_requests() == 0
    results = rows(isolated / "out.db", "SELECT status, via FROM results")
    assert len(results) == 20 and {(r["status"], r["via"]) for r in results} == {("ok", "batch")}
    assert rows(isolated / "out.db", "SELECT status, items_ok FROM runs") == [{"status": "completed", "items_ok": 20}]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_crash_between_create_and_commit_then_resume_finds_the_batch(
        provider: str, fake: FakeServer, batch_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    job = batch_job(isolated, [provider], 5)
    crashed = hanzo(job, "--providers-dir", batch_providers, env={"HANZO_RUN_CRASH_AFTER_BATCH_CREATE": "1"})
    assert crashed.returncode == -9  # SIGKILL right after the provider answered the create
    assert len(fake.batch.created(provider)) == 1
    assert rows(isolated / "out.db", "SELECT provider_batch_id, status FROM batches") == [
        {"provider_batch_id": None, "status": "pending"}]
    resumed = hanzo(job, "--providers-dir", batch_providers, "--resume", "--poll-interval", "0.01")
    assert resumed.returncode == 0, resumed.stderr
    assert "found batch" in resumed.stderr
    assert len(fake.batch.created(provider)) == 1  # not created a second time
    batch = fake.batch.created(provider)[0]
    assert rows(isolated / "out.db", "SELECT provider_batch_id, status FROM batches") == [
        {"provider_batch_id": batch.id, "status": "completed"}]
    results = rows(isolated / "out.db", "SELECT status, batch_id FROM results")
    assert len(results) == 5 and all(r == {"status": "ok", "batch_id": batch.id} for r in results)


def test_a_limit_of_40_requests_splits_100_items_into_3_batches(fake: FakeServer, tmp_path: Path,
                                                                 keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, "openai")
    data["batch"]["max_requests"] = 40
    providers = write_providers(tmp_path / "p40", {"openai": data})
    outcome = run(batch_job(isolated, ["openai"], 100), providers)
    assert (outcome.ok, outcome.failed) == (100, 0)
    assert [len(b.requests) for b in fake.batch.created("openai")] == [40, 40, 20]
    sent = [r.custom_id for b in fake.batch.created("openai") for r in b.requests]
    assert len(set(sent)) == 100
    assert rows(isolated / "out.db", "SELECT request_count FROM batches ORDER BY id") == [
        {"request_count": 40}, {"request_count": 40}, {"request_count": 20}]


def test_a_byte_limit_splits_too(fake: FakeServer, tmp_path: Path, keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, "anthropic")
    data["batch"]["max_bytes"] = 2000
    providers = write_providers(tmp_path / "pbytes", {"anthropic": data})
    outcome = run(batch_job(isolated, ["anthropic"], 30), providers)
    assert (outcome.ok, outcome.failed) == (30, 0)
    made = fake.batch.created("anthropic")
    assert len(made) > 1 and sum(len(b.requests) for b in made) == 30
    assert all(len(yaml.safe_dump(b.create)) < 2000 for b in made)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_per_request_errors_get_the_codes_a_synchronous_answer_would(
        provider: str, fake: FakeServer, batch_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    job = batch_job(isolated, [provider], 6)
    from runner.config.jobs import load_job
    from runner.config.providers import ProviderRegistry
    registry = ProviderRegistry([batch_providers])
    loaded = load_job(job, registry)
    keys_in_order = [item.item_key for item in loaded.items_for(loaded.targets[0])]
    fake.batch.shuffle = True
    fake.batch.fail_ids = {keys_in_order[1]: 500, keys_in_order[3]: 400, keys_in_order[4]: 429}
    outcome = run(job, batch_providers)
    assert (outcome.ok, outcome.failed) == (3, 3)
    got = {r["item_key"]: r for r in rows(isolated / "out.db", "SELECT * FROM results")}
    assert got[keys_in_order[1]]["error_code"] == "SERVER_ERROR"
    assert got[keys_in_order[3]]["error_code"] == "CLIENT_ERROR"
    assert got[keys_in_order[4]]["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert {got[k]["http_status"] for k in (keys_in_order[1], keys_in_order[3], keys_in_order[4])} == {500, 400, 429}
    assert all(got[k]["status"] == "ok" for k in (keys_in_order[0], keys_in_order[2], keys_in_order[5]))
    assert all(r["via"] == "batch" for r in got.values())


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_failed_batch_fails_its_items_with_the_reason(provider: str, fake: FakeServer, batch_providers: Path,
                                                        keys: dict[str, str], isolated: Path) -> None:
    fake.batch.outcome = "failed"
    outcome = run(batch_job(isolated, [provider], 4), batch_providers)
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 0, 4)
    results = rows(isolated / "out.db", "SELECT error_code, error_message FROM results")
    assert {r["error_code"] for r in results} == {"REQUEST_FAILED"}
    reason = "token_limit_exceeded" if provider == "openai" else "internal error"
    assert all("failed" in r["error_message"] and reason in r["error_message"] for r in results)
    assert rows(isolated / "out.db", "SELECT status FROM batches") == [{"status": "failed"}]
    assert len(fake.batch.created(provider)) == 1  # a failed batch is not sent again by itself


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_expired_requests_are_sent_again_up_to_the_retry_settings(
        provider: str, fake: FakeServer, tmp_path: Path, keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, provider)
    data["retry"]["max_retries"] = 1
    providers = write_providers(tmp_path / "pexp", {provider: data})
    fake.batch.outcome, fake.batch.partial = "expired", 2
    outcome = run(batch_job(isolated, [provider], 5), providers)
    made = fake.batch.created(provider)
    first_ok = 0 if provider == "gemini" else 2  # an expired Gemini batch delivers nothing
    assert [len(b.requests) for b in made] == [5, 5 - first_ok]
    # the second batch expired too (the fake's outcome holds): after 2 sends, TIMEOUT
    second_ok = 0 if provider == "gemini" else 2
    assert (outcome.ok, outcome.failed) == (first_ok + second_ok, 5 - first_ok - second_ok)
    errors = rows(isolated / "out.db", "SELECT error_code, error_message FROM results WHERE status = 'error'")
    assert {e["error_code"] for e in errors} == {"TIMEOUT"}
    assert all("expired before this request ran (sent 2 times by batch)" in e["error_message"] for e in errors)
    assert fake.batch.chat_requests() == 0


def test_expired_requests_fall_back_to_synchronous_requests(fake: FakeServer, batch_providers: Path,
                                                            keys: dict[str, str], isolated: Path) -> None:
    fake.batch.outcome, fake.batch.partial = "expired", 2
    outcome = run(batch_job(isolated, ["openai"], 5), batch_providers, batch_fallback="sync")
    assert (outcome.ok, outcome.failed) == (5, 0)
    assert len(fake.batch.created("openai")) == 1 and fake.batch.chat_requests("openai") == 3
    via = rows(isolated / "out.db", "SELECT via, count(*) AS n, sum(cost_usd IS NOT NULL) AS priced FROM results"
               " GROUP BY via ORDER BY via")
    assert via == [{"via": "batch", "n": 2, "priced": 2}, {"via": "sync", "n": 3, "priced": 3}]
    sources = {r["via"]: r["price_source"] for r in rows(isolated / "out.db", "SELECT via, price_source FROM results")}
    assert sources["batch"].endswith("(batch 50%)") and not sources["sync"].endswith("%)")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_cancel_then_resume_records_cancelled(provider: str, fake: FakeServer, batch_providers: Path,
                                              keys: dict[str, str], isolated: Path) -> None:
    fake.batch.polls_until_done = 50
    job = batch_job(isolated, [provider], 4)
    assert hanzo(job, "--providers-dir", batch_providers, "--no-wait").returncode == 0
    listed = hanzo("batches", "--db", isolated / "out.db")
    assert listed.returncode == 0 and "running" in listed.stdout
    cancelled = hanzo("batches", "cancel", "1", "--db", isolated / "out.db", "--providers-dir", batch_providers)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{provider}/{MODELS[provider]}: {fake.batch.created()[0].id}: cancelling"
    codes = []
    while not codes or codes[-1] == 75 and len(codes) < 5:
        codes.append(hanzo(job, "--providers-dir", batch_providers, "--resume").returncode)
    assert codes == [75, 1]  # cancelling, then cancelled: 4 items failed
    results = rows(isolated / "out.db", "SELECT error_code FROM results")
    assert len(results) == 4 and {r["error_code"] for r in results} == {"CANCELLED"}
    assert len(fake.batch.created()) == 1
    state = hanzo("batches", "1", "--db", isolated / "out.db", "--json")
    assert '"status": "cancelled"' in state.stdout


def test_targets_without_a_batch_api_run_synchronously_in_the_same_run(
        fake: FakeServer, fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini", "sambanova/Meta-Llama-3.3-70B-Instruct"],
                               "prompts": ["hello {{n}}"], "data": [{"n": i} for i in range(3)], "output": "o.db"})
    outcome = run_job(job, providers_dirs=(str(fake_providers),), batch=True, poll_interval=0.01)
    assert (outcome.ok, outcome.failed) == (6, 0)
    assert rows(isolated / "o.db", "SELECT provider, via, count(*) AS n FROM results GROUP BY provider ORDER BY 1") \
        == [{"provider": "openai", "via": "batch", "n": 3}, {"provider": "sambanova", "via": "sync", "n": 3}]
    assert fake.batch.chat_requests("sambanova") == 3 and fake.batch.chat_requests("openai") == 0


def test_no_batch_overrides_the_job(fake: FakeServer, batch_providers: Path, keys: dict[str, str],
                                    isolated: Path) -> None:
    outcome = run(batch_job(isolated, ["openai"], 3), batch_providers, batch=False)
    assert outcome.ok == 3 and fake.batch.created() == [] and fake.batch.chat_requests("openai") == 3


def test_dry_run_shows_batch_and_sync_cost(fake: FakeServer, batch_providers: Path, isolated: Path) -> None:
    job = batch_job(isolated, ["openai", "anthropic"], 10)
    shown = hanzo(job, "--providers-dir", batch_providers, "--dry-run", "--json")
    assert shown.returncode == 0, shown.stderr
    import json
    data = json.loads(shown.stdout)
    for target in data["targets"]:
        assert target["batch_discount"] == 0.5
        assert target["batch_typical_cost_usd"] == pytest.approx(target["typical_cost_usd"] / 2)
    table = hanzo(job, "--providers-dir", batch_providers, "--dry-run")
    assert "batch typical $" in table.stdout


def test_budget_reserves_at_the_batch_price(fake: FakeServer, batch_providers: Path, keys: dict[str, str],
                                            isolated: Path) -> None:
    # worst case per item at the sync price: (~10 input + 50 output tokens) at $1/$5 per 1M ~ $0.00026;
    # at the batch price half that: a budget for 10 batch items is too small for 10 sync ones.
    job = batch_job(isolated, ["anthropic"], 10)
    outcome = run(job, batch_providers, max_cost=0.0016)
    assert (outcome.ok, outcome.failed) == (10, 0)
    outcome = run(job, batch_providers, max_cost=0.0016, batch=False, db=isolated / "sync.db")
    assert outcome.failed > 0


RESULT_COLUMNS = "item_key, target, prompt, status, response_text, input_tokens, output_tokens, cost_usd, via"


@pytest.mark.parametrize("batch", [False, True], ids=["sync", "batch"])
def test_three_shards_merged_equal_one_unsharded_run(batch: bool, fake: FakeServer, batch_providers: Path,
                                                     keys: dict[str, str], isolated: Path) -> None:
    job = batch_job(isolated, ["openai", "gemini"], 30, batch=batch)
    whole = run(job, batch_providers, db=isolated / "whole.db")
    assert whole.ok == 60
    shards = []
    for k in range(3):
        done = hanzo(job, "--providers-dir", batch_providers, "--shard", f"{k}/3", "--db", isolated / f"s{k}.db",
                     "--poll-interval", "0.01", "-q")
        assert done.returncode == 0, done.stderr
        shards.append(isolated / f"s{k}.db")
        assert rows(shards[-1], "SELECT options FROM runs")[0]["options"].count(f'"shard": "{k}/3"') == 1
    sizes = [len(rows(s, "SELECT item_key FROM results")) for s in shards]
    assert sum(sizes) == 60 and all(0 < n < 60 for n in sizes)  # every item in exactly one shard
    merged = hanzo("merge", isolated / "all.db", *shards)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.startswith("merged 3 runs from 3 databases into")
    query = f"SELECT {RESULT_COLUMNS} FROM results ORDER BY item_key"
    assert rows(isolated / "all.db", query) == rows(isolated / "whole.db", query)
    run_row = rows(isolated / "all.db", "SELECT status, items_ok, items_failed FROM runs")
    assert run_row == [{"status": "completed", "items_ok": 60, "items_failed": 0}]
    if batch:  # every batch comes with its items, re-pointed at the merged batch ids
        items = "SELECT b.provider_batch_id, i.item_key FROM batch_items i JOIN batches b ON b.id = i.batch"
        assert sorted(map(str, rows(isolated / "all.db", items))) == sorted(
            str(r) for s in shards for r in rows(s, items))
        assert len(rows(isolated / "all.db", items)) == 60


def test_merge_refuses_different_jobs_unless_allowed(fake: FakeServer, batch_providers: Path, keys: dict[str, str],
                                                     isolated: Path) -> None:
    a = run(batch_job(isolated, ["openai"], 2), batch_providers, db=isolated / "a.db", batch=False)
    b = run(batch_job(isolated, ["openai"], 3), batch_providers, db=isolated / "b.db", batch=False)
    assert a.ok == 2 and b.ok == 3
    refused = hanzo("merge", isolated / "m.db", isolated / "a.db", isolated / "b.db")
    assert refused.returncode == 2 and "--allow-different-jobs" in refused.stderr
    allowed = hanzo("merge", isolated / "m.db", isolated / "a.db", isolated / "b.db", "--allow-different-jobs")
    assert allowed.returncode == 0, allowed.stderr
    assert len(rows(isolated / "m.db", "SELECT id FROM runs")) == 2


def test_bad_shard_is_a_usage_error(isolated: Path, fake_providers: Path) -> None:
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["hi"]})
    for spec in ("3/3", "a/b", "1"):
        done = hanzo(job, "--providers-dir", fake_providers, "--shard", spec)
        assert done.returncode == 2 and "--shard" in done.stderr, done.stderr


def test_ctrl_c_while_polling_leaves_the_batches_running(fake: FakeServer, batch_providers: Path,
                                                         keys: dict[str, str], isolated: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    fake.batch.polls_until_done = 10_000
    job = batch_job(isolated, ["openai"], 3)
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(job), "--providers-dir", str(batch_providers),
                             "--poll-interval", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(b.polls for b in fake.batch.created("openai")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "1 batches keep running at the provider" in err and f"hanzo-run {job} --resume 1" in err
    assert rows(isolated / "out.db", "SELECT status FROM runs") == [{"status": "submitted"}]
    assert fake.batch.created("openai")[0].state == "running" and fake.batch.created("openai")[0].cancel_at is None


def test_batch_lines_get_the_providers_dialect_like_synchronous_requests(fake: FakeServer, keys: dict[str, str],
                                                                         isolated: Path, tmp_path: Path) -> None:
    """The body of a batch line is rewritten for the provider exactly as a synchronous body is: the output
    cap under max_completion_tokens (openai.yaml) and a llama-cpp-python schema as json_object + schema."""
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    providers = write_providers(tmp_path / "dialect", {"openai": point_at(
        fake, "openai", json_schema_style="llama-cpp-python")})
    job = batch_job(isolated, ["openai"], 3, response_schema=schema)
    run(job, providers)
    [created] = fake.batch.created("openai")
    for request in created.requests:
        body = request.body
        assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
        assert body["response_format"] == {"type": "json_object", "schema": schema}


def test_json_and_tools_go_by_batch_too(fake: FakeServer, batch_providers: Path, keys: dict[str, str],
                                        isolated: Path) -> None:
    """A batch line's body is the synchronous request: the response schema and the tools are sent in each
    protocol's shape, and the answers' JSON and tool calls are recorded and checked as they would be."""
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    weather = {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}
    job = write_job(isolated, {"targets": [f"{p}/{m}" for p, m in MODELS.items()], "batch": True, "output": "out.db",
                               "params": {"max_tokens": 50}, "prompts": [
        {"id": "json", "text": "Give a number", "response_schema": schema},
        {"id": "tool", "text": "Weather in Paris", "tools": [weather], "checks": [{"tool_called": "get_weather"}]}]})
    outcome = run(job, batch_providers)
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 6, 0)
    assert fake.batch.chat_requests() == 0
    got = rows(isolated / "out.db", "SELECT provider, prompt_id, via, passed, response_json, tool_calls,"
                                    " failed_checks, response_text FROM results")
    for r in got:
        assert r["via"] == "batch" and r["passed"] == 1, r
        if r["prompt_id"] == "json":
            assert isinstance(json.loads(r["response_json"])["n"], int), r
        else:
            assert json.loads(r["tool_calls"])[0]["name"] == "get_weather", r
