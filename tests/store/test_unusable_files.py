"""Files hanzo-run cannot use are usage errors (exit 2) naming the path and the fix, never an
internal error (exit 3): a provider header with a control character, a --db that is not a
results database, a corrupt response cache, a cache folder that is a file (issue 17, item 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.fakes import FakeServer

NOT_SQLITE = "these are my notes, not a database\n" * 40


def test_a_header_value_with_a_line_break_is_a_validation_error(fake: FakeServer, isolated: Path) -> None:
    data = point_at(fake, "openai", headers={"X-Team": "research\r\nX-Injected: 1"})
    folder = write_providers(isolated / "providers.d", {"openai": data})
    line = next(i for i, text in enumerate((folder / "openai.yaml").read_text().splitlines(), start=1)
                if "X-Team" in text)
    message = (f"providers.d/openai.yaml:{line}:11: headers.X-Team: a header value must not hold control characters "
               "(a line break would start another header); remove them")
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["hi"], "output": "out.db"})
    for command in (("validate", folder / "openai.yaml"), (job,)):
        done = hanzo(*command, env={"OPENAI_API_KEY": fake.keys["openai"]})
        assert done.returncode == 2, done.stderr
        assert message in done.stderr.splitlines()
    assert fake.count("openai") == 0


@pytest.mark.parametrize("command", [
    ("runs",), ("report",), ("show", "1"), ("diff", "1", "2"), ("batches",), ("batches", "cancel", "1"),
    ("rescore", "1", "job.yaml")])
def test_a_db_that_is_not_sqlite_is_named_with_the_fix(command: tuple[str, ...], isolated: Path) -> None:
    (isolated / "notes.db").write_text(NOT_SQLITE)
    write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"]})
    done = hanzo(*command, "--db", "notes.db")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hanzo-run: cannot use ")
    assert done.stderr.endswith("notes.db as a results database: SQLite says: file is not a database; give --db (or "
                                "the job's output:) a hanzo-run results database, or a new file name\n")


def test_merge_into_a_file_that_is_not_sqlite(isolated: Path, fixed_runs: Path) -> None:
    (isolated / "notes.db").write_text(NOT_SQLITE)
    done = hanzo("merge", "notes.db", fixed_runs)
    assert done.returncode == 2, done.stderr
    assert "cannot use notes.db as a results database: SQLite says: file is not a database" in done.stderr


def test_a_corrupt_response_cache_names_the_file_and_the_fix(isolated: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "responses.db").write_text(NOT_SQLITE)
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "cache": True, "output": "out.db"})
    expected = (f"hanzo-run: the response cache {cache / 'responses.db'} cannot be used: SQLite says: file is not a "
                f"database; it holds only cached answers: delete it (rm {cache / 'responses.db'}) and run again, or "
                "run with --no-cache\n")
    for command in (("cache", "stats"), (job,)):
        done = hanzo(*command, env={"HANZO_RUN_CACHE_DIR": str(cache)})
        assert done.returncode == 2, done.stderr
        assert done.stderr.endswith(expected)
    assert hanzo(job, "--no-cache", env={"HANZO_RUN_CACHE_DIR": str(cache)}).returncode == 0


def test_a_cache_folder_that_is_a_file(isolated: Path, tmp_path: Path) -> None:
    (tmp_path / "cachefile").write_text("x")
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "cache": True, "output": "out.db"})
    for command in (("cache", "stats"), (job,)):
        done = hanzo(*command, env={"HANZO_RUN_CACHE_DIR": str(tmp_path / "cachefile")})
        assert done.returncode == 2, done.stderr
        assert done.stderr.endswith(f"hanzo-run: the response cache folder {tmp_path / 'cachefile'} is not a folder "
                                    "(a file is in the way); point HANZO_RUN_CACHE_DIR at a folder, or run with "
                                    "--no-cache\n")
