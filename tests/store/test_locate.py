"""Finding the results database: --db, a job file, or the one database reachable from here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runner.errors import UsageError
from runner.store.locate import find_database

JOB = {"name": "j", "targets": ["echo/echo"], "prompts": ["hi"]}


def job(path: Path, **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**JOB, **extra}))
    return path


def database(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_an_explicit_db_wins(tmp_path: Path) -> None:
    here = database(tmp_path / "hanzo-runs.db")
    other = database(tmp_path / "elsewhere" / "x.db")
    job(tmp_path / "j.yaml")
    assert find_database(Path("elsewhere/x.db"), tmp_path / "j.yaml", tmp_path) == other
    assert find_database(other, None, tmp_path / "jobs") == other  # absolute stays absolute
    assert find_database(None, None, tmp_path) == here
    with pytest.raises(UsageError, match=r"^no results database at missing\.db$"):
        find_database(Path("missing.db"), None, tmp_path)


def test_a_job_file_means_its_output_relative_to_the_job(tmp_path: Path) -> None:
    database(tmp_path / "hanzo-runs.db")  # ignored: the job says where its results are
    custom = database(tmp_path / "jobs" / "results" / "compare.db")
    job(tmp_path / "jobs" / "compare.yaml", output="results/compare.db")
    assert find_database(None, Path("jobs/compare.yaml"), tmp_path) == custom
    default = database(tmp_path / "jobs" / "hanzo-runs.db")
    job(tmp_path / "jobs" / "plain.yaml")
    assert find_database(None, Path("jobs/plain.yaml"), tmp_path) == default


def test_a_job_file_problems_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^no job file at nope\.yaml$"):
        find_database(None, Path("nope.yaml"), tmp_path)
    job(tmp_path / "fresh.yaml", output="fresh.db")
    with pytest.raises(UsageError, match=r"^fresh\.yaml has no results yet: .*fresh\.db does not exist; "
                                         r"run it first: hanzo-run fresh\.yaml$"):
        find_database(None, Path("fresh.yaml"), tmp_path)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(UsageError, match=r"^broken\.yaml is not valid YAML: "):
        find_database(None, Path("broken.yaml"), tmp_path)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(UsageError, match=r"^list\.yaml is not a job file"):
        find_database(None, Path("list.yaml"), tmp_path)


def test_the_one_reachable_database_is_found(tmp_path: Path) -> None:
    job(tmp_path / "jobs" / "compare.yaml", output="compare.db")
    job(tmp_path / "jobs" / "hello.yaml", output="hello.db")  # never run: no database, no ambiguity
    (tmp_path / "ci.yaml").write_text("on: push\n")  # not a job
    (tmp_path / "bad.yaml").write_text("a: [\n")  # unreadable files are skipped while guessing
    found = database(tmp_path / "jobs" / "compare.db")
    assert find_database(None, None, tmp_path) == found


def test_jobs_sharing_an_output_are_one_database(tmp_path: Path) -> None:
    shared = database(tmp_path / "hanzo-runs.db")
    job(tmp_path / "a.yaml")
    job(tmp_path / "b.yml")
    job(tmp_path / "jobs" / "c.yaml", output="../hanzo-runs.db")
    assert find_database(None, None, tmp_path) == shared


def test_several_databases_are_named(tmp_path: Path) -> None:
    database(tmp_path / "hanzo-runs.db")
    database(tmp_path / "jobs" / "compare.db")
    job(tmp_path / "jobs" / "compare.yaml", output="compare.db")
    with pytest.raises(UsageError) as error:
        find_database(None, None, tmp_path)
    assert str(error.value) == ("several results databases here: hanzo-runs.db, jobs/compare.db; "
                                "choose one with --db PATH or by naming the job file")


def test_none_says_how_to_point_at_one(tmp_path: Path) -> None:
    job(tmp_path / "jobs" / "compare.yaml")
    with pytest.raises(UsageError) as error:
        find_database(None, None, tmp_path)
    assert str(error.value) == (
        f"no results database found in {tmp_path} (looked for ./hanzo-runs.db and the output of each job in ./"
        " and ./jobs); run a job first, or point at a database with --db PATH or a job file")
