"""Issue 19.1: every view names an item by its data row's values (``capital country=India``), not by
``row 7``; a database written before values were stored still shows and reports, by row number."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import yaml

from tests.conftest import hanzo, write_job

LONG = "a question that goes on and on " * 10
ROWS = [{"country": "India", "question": "What is the capital?"}, {"country": "France", "question": LONG}]


def capital_job(folder: Path) -> Path:
    """Two items on the echo provider (it answers with the prompt); France fails the check."""
    return write_job(folder, {"targets": ["echo/echo"],
                              "prompts": [{"id": "capital", "text": "{{question}} ({{country}}) India"},
                                          {"id": "plain", "text": "{{country}}"}],
                              "data": ROWS, "checks": [{"contains": "India"}], "output": "out.db"})


def forget_vars(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE results SET vars = NULL")  # as a hanzo-run before vars wrote it
    conn.close()


def test_show_names_each_item_by_its_values(isolated: Path) -> None:
    hanzo(capital_job(isolated), "-q")
    done = hanzo("show")
    assert done.returncode == 0, done.stderr
    titles = [line for line in done.stdout.splitlines() if line.startswith("╭")]
    assert 'echo/echo  capital country=India question="What is the capital?"  row 0  passed' in titles[0]
    # A long value is cut, with the row number beside it; the prompt panel below still has all of it.
    assert 'echo/echo  capital country=France question="a question that goes on and on a q…  row 1  passed' \
        in titles[1]
    assert "plain country=France question=" in done.stdout


def test_show_of_a_run_written_before_values_were_stored_names_rows_by_number(isolated: Path) -> None:
    hanzo(capital_job(isolated), "-q")
    forget_vars(isolated / "out.db")
    done = hanzo("show", "--failed")
    assert done.returncode == 0, done.stderr
    assert "echo/echo  plain row 1  failed" in done.stdout and "country=" not in done.stdout


def test_report_items_gives_each_variable_a_column(isolated: Path) -> None:
    job = capital_job(isolated)
    hanzo(job, "-q")
    rows = list(csv.DictReader(io.StringIO(hanzo("report", job, "--items", "--csv").stdout)))
    header = list(rows[0])
    assert header[header.index("row_index"):header.index("repeat_index") + 1] == [
        "row_index", "var.country", "var.question", "repeat_index"]
    assert [(r["prompt_id"], r["var.country"], r["var.question"]) for r in rows] == [
        ("capital", "India", "What is the capital?"), ("capital", "France", LONG),
        ("plain", "India", "What is the capital?"), ("plain", "France", LONG)]
    items = json.loads(hanzo("report", job, "--items", "--json").stdout)
    assert [i["vars"] for i in items] == [*ROWS, *ROWS]


def test_report_items_of_a_run_written_before_values_were_stored(isolated: Path) -> None:
    job = capital_job(isolated)
    hanzo(job, "-q")
    forget_vars(isolated / "out.db")
    done = hanzo("report", job, "--items", "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 4 and not any(column.startswith("var.") for column in rows[0])
    assert [i["vars"] for i in json.loads(hanzo("report", job, "--items", "--json").stdout)] == [None] * 4


def test_diff_names_changed_items_by_their_values(isolated: Path) -> None:
    job = capital_job(isolated)
    hanzo(job, "-q")
    data = yaml.safe_load(job.read_text())
    job.write_text(yaml.safe_dump({**data, "checks": [{"contains": "France"}]}))  # India now fails, France passes
    hanzo(job, "-q")
    done = hanzo("diff", "1", "2", "--db", isolated / "out.db", "--json")
    assert done.returncode == 1, done.stderr
    changes = json.loads(done.stdout)["targets"][0]["changes"]
    assert [(c["change"], c["prompt_id"], c["vars"]) for c in changes] == [
        ("pass_to_fail", "capital", ROWS[0]), ("pass_to_fail", "plain", ROWS[0]), ("fail_to_pass", "plain", ROWS[1])]
    table = hanzo("diff", "1", "2", "--db", isolated / "out.db", env={"COLUMNS": "160"}).stdout
    assert "prompt capital" in table and 'country=India question="What is the cap…' in table


def test_html_report_names_items_by_their_values(isolated: Path) -> None:
    job = capital_job(isolated)
    hanzo(job, "-q")
    done = hanzo("report", job, "--html", "report.html")
    assert done.returncode == 0, done.stderr
    grid = (isolated / "report.html").read_text().split('<table id="grid">')[1]
    assert '<span class="var"><span class="muted">country=</span>France</span>' in grid
    forget_vars(isolated / "out.db")
    assert hanzo("report", job, "--html", "old.html").returncode == 0
    grid = (isolated / "old.html").read_text().split('<table id="grid">')[1]
    assert 'class="var"' not in grid and '<span class="muted">row 1</span>' in grid
