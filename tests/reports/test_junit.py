"""``--junit FILE``: one testsuite per target, one testcase per item, errors and check failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import sqlite_utils

from runner.reports.junit import write_junit
from tests.conftest import hanzo, write_job


def test_junit_structure(fixed_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "ci" / "junit.xml"
    write_junit(fixed_runs, 1, out)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("name", "tests", "failures", "errors", "time")} == {
        "name": "hanzo-run fixed run 1", "tests": "6", "failures": "1", "errors": "1", "time": "5.800"}
    a, b = root.findall("testsuite")
    assert {k: a.get(k) for k in ("name", "tests", "failures", "errors", "time")} == {
        "name": "openai/a", "tests": "4", "failures": "1", "errors": "1", "time": "5.600"}
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in a.findall("testcase")] == [
        ("openai/a", "cap[row 0]", "0.100"), ("openai/a", "cap[row 1]", "0.200"),
        ("openai/a", "cap[row 2]", "0.300"), ("openai/a", "cap[row 3]", "5.000")]
    ok, failed, _, errored = a.findall("testcase")
    assert [(p.get("name"), p.get("value")) for p in ok.findall("properties/property")] == [("row", "0")]
    assert ok.find("failure") is None and ok.find("error") is None
    failure = failed.find("failure")
    assert failure is not None and failure.get("type") == "checks"
    assert failure.get("message") == "contains: answer does not contain 'Paris'"
    assert failure.text == "contains: answer does not contain 'Paris'\n\nanswer:\nanswer 1"
    error = errored.find("error")
    assert error is not None
    assert (error.get("type"), error.get("message")) == ("MAX_RETRIES_EXCEEDED",
                                                          "gave up after 3 attempts; last: HTTP 503")
    assert (b.get("name"), b.get("tests"), b.get("failures"), b.get("errors")) == ("local/b", "2", "0", "0")


def test_run_writes_junit(isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["say {{city}}"],
                               "data": [{"city": "Paris"}, {"city": "Rome"}], "checks": [{"contains": "Paris"}],
                               "output": "out.db"})
    done = hanzo(job, "-q", "--junit", "report.xml")
    assert done.returncode == 1
    root = ET.parse(isolated / "report.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["p1[city=Paris]", "p1[city=Rome]"]
    assert cases[1].find("failure") is not None and cases[0].find("failure") is None
    db = sqlite_utils.Database(isolated / "out.db")
    assert [r["passed"] for r in db.query("SELECT passed FROM results ORDER BY row_index")] == [1, 0]


def test_junit_names_each_case_by_its_values_and_carries_them_whole(isolated: Path) -> None:
    long = "a sentence of many words " * 8
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": [{"id": "capital", "text": "{{country}}"}],
                               "data": [{"country": "India", "note": long, "n": 7}], "repeat": 2,
                               "output": "out.db"})
    assert hanzo(job, "-q", "--junit", "report.xml").returncode == 0
    cases = ET.parse(isolated / "report.xml").getroot().findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ['capital[country=India note="a sentence of many words a sentence of…]',
                                              'capital[country=India note="a sentence of many words a sentence of…]#1']
    assert [(p.get("name"), p.get("value")) for p in cases[0].findall("properties/property")] == [
        ("row", "0"), ("var.country", "India"), ("var.note", long), ("var.n", "7")]


def test_control_characters_in_answers_and_values_keep_the_file_readable(isolated: Path) -> None:
    # An answer with a terminal colour code and a NUL, a data value with a form feed: XML 1.0 allows none of
    # them, and a CI system that cannot parse the file shows no results at all.
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["\x1b[31m{{city}}\x00"],
                               "data": [{"city": "Pa\x0cris"}], "checks": [{"contains": "Rome"}],
                               "output": "out.db"})
    assert hanzo(job, "-q", "--junit", "report.xml").returncode == 1
    (case,) = ET.parse(isolated / "report.xml").getroot().findall("testsuite/testcase")
    assert case.get("name") == 'p1[city="Pa\\fris"]'  # names quote such a value already
    assert [p.get("value") for p in case.findall("properties/property")] == ["0", "Pa\\x0cris"]
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert failure.text.endswith("answer:\n\\x1b[31mPa\\x0cris\\x00")  # shown, not dropped
