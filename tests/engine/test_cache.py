"""The response cache: keys, round trip, expiry, clearing, two writers at once, no key on disk."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.store.cache import CACHE_FILE, DEFAULT_TTL_S, CachedAnswer, ResponseCache, cache_dir, request_key

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}], "temperature": 0}
ANSWER = CachedAnswer("Paris.", finish_reason="stop", input_tokens=12, output_tokens=2, latency_ms=321.5,
                      ttft_ms=80.0, http_status=200, cost_usd=0.00001, price_source="providers.d/openai.yaml")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(**changes: object) -> str:
    args: dict[str, object] = {"base_url": "https://api.openai.com/v1", "protocol": "openai",
                               "model": "gpt-4o-mini", "body": BODY, "repeat_index": 0}
    args.update(changes)
    return request_key(**args)  # type: ignore[arg-type]


def test_the_key_ignores_streaming_and_field_order_but_not_the_request() -> None:
    reordered = dict(reversed(list(BODY.items())))
    streamed = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    assert key() == key(body=reordered) == key(body=streamed) == key(base_url="https://api.openai.com/v1/")
    assert len(key()) == 64
    others = {key(base_url="https://api.groq.com/openai/v1"), key(protocol="ollama"), key(model="gpt-4o"),
              key(body={**BODY, "temperature": 0.7}), key(repeat_index=1)}
    assert key() not in others and len(others) == 5


def test_round_trip(tmp_path: Path) -> None:
    clock = Clock()
    with ResponseCache.open(tmp_path / "c.db", clock=clock) as cache:
        assert cache.get(key()) is None
        cache.put(key(), ANSWER)
        got = cache.get(key())
    assert got is not None
    assert got.result_fields() == ANSWER.result_fields()
    assert got.created_at == clock.now
    with ResponseCache.open(tmp_path / "c.db") as again:  # it is on disk, not only in this connection
        assert again.get(key(), ttl_s=None) == got


def test_an_answer_is_taken_from_ok_result_rows_only() -> None:
    row = {"status": "ok", **ANSWER.result_fields(), "item_key": "k", "error_code": None}
    assert CachedAnswer.from_result(row) == ANSWER
    with pytest.raises(ValueError, match="only ok answers are cached, not status 'error'"):
        CachedAnswer.from_result({**row, "status": "error", "response_text": None})


def test_expired_entries_are_misses(tmp_path: Path) -> None:
    clock = Clock()
    with ResponseCache.open(tmp_path / "c.db", clock=clock) as cache:
        cache.put(key(), ANSWER)
        clock.now += DEFAULT_TTL_S - 1
        assert cache.get(key()) is not None
        clock.now += 2
        assert cache.get(key()) is None
        assert cache.get(key(), ttl_s=None) is not None  # still stored: expiry is a read rule
        assert cache.get(key(), ttl_s=DEFAULT_TTL_S + 10) is not None
        cache.put(key(), ANSWER)  # asked again: fresh
        assert cache.get(key()) is not None


def test_stats_and_clear_older_than(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.0)
    with ResponseCache.open(tmp_path / "c.db", clock=clock) as cache:
        empty = cache.stats()
        assert (empty["entries"], empty["oldest"], empty["newest"]) == (0, None, None)
        cache.put(key(repeat_index=0), ANSWER)
        clock.now += 3600
        cache.put(key(repeat_index=1), ANSWER)
        clock.now += 3600
        cache.put(key(repeat_index=2), ANSWER)
        stats = cache.stats()
        assert stats["entries"] == 3 and stats["bytes"] > 0
        assert (stats["oldest"], stats["newest"]) == ("2023-11-14T22:13:20Z", "2023-11-15T00:13:20Z")
        assert cache.clear(older_than_s=1800) == 2  # the two older than half an hour
        assert cache.get(key(repeat_index=2)) is not None and cache.get(key(repeat_index=0)) is None
        assert cache.clear(older_than_s=1800) == 0
        assert cache.clear() == 1
        assert cache.stats()["entries"] == 0


def test_the_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANZO_RUN_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    with ResponseCache.open() as cache:
        assert cache.path == tmp_path / "cache" / CACHE_FILE
    assert (tmp_path / "cache" / CACHE_FILE).exists()
    monkeypatch.delenv("HANZO_RUN_CACHE_DIR")
    assert cache_dir().name == "hanzo-run"


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from runner.store.cache import CachedAnswer, ResponseCache, request_key
    path, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    with ResponseCache.open(path) as cache:
        for i in range(200):
            k = request_key("http://x", "openai", "m", {"writer": name, "i": i}, 0)
            cache.put(k, CachedAnswer(f"{name} {i}"))
            assert cache.get(k) is not None
""")


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path, go = tmp_path / "shared" / "c.db", tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(go)],
                                stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    time.sleep(0.5)  # both interpreters started and waiting: they open the new file together
    go.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    with ResponseCache.open(path) as cache:
        assert cache.stats()["entries"] == 400
        assert cache.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        hit = cache.get(request_key("http://x", "openai", "m", {"writer": "b", "i": 199}, 0))
    assert hit is not None and hit.response_text == "b 199"


def test_no_api_key_reaches_the_key_or_the_file(tmp_path: Path) -> None:
    secret = "sk-SENTINEL-do-not-store-0123456789"
    headers = {"Authorization": f"Bearer {secret}", "x-api-key": secret}
    # The caller holds the key next to the request; only the request's own fields go into the key.
    request = {"base_url": "https://api.openai.com/v1", "headers": headers, "body": BODY}
    k = request_key(request["base_url"], "openai", "gpt-4o-mini", BODY, 0)  # type: ignore[arg-type]
    assert secret not in k
    path = tmp_path / "c.db"
    with ResponseCache.open(path) as cache:
        cache.put(k, ANSWER)
        cache.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("c.db"))
    assert b"Paris." in stored  # the check reads the real bytes
    assert secret.encode() not in stored
