"""JUnit XML of a run, so CI systems show its results: one <testsuite> per target, one
<testcase> per item, named by its prompt and data row's values (``capital[country=India]``) and
carrying each variable whole as a ``var.NAME`` property. A failed request is an <error> (its
error code and message); an answer that failed its checks is a <failure> listing every failed
check and why.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import sqlite_utils

from ..store.results import results_of
from ..store.runs import resolve_run
from .items import VAR_PREFIX, parse_vars, row_name, var_cell


def junit_tree(db: sqlite_utils.Database, run_id: int) -> ET.ElementTree[ET.Element]:
    run = resolve_run(db, run_id)
    assert run is not None, f"no run {run_id}"  # the command checked it
    job_name = run.job_name
    rows = results_of(db, run_id, ("target", "prompt_id", "row_index", "repeat_index", "status", "error_code",
                                   "error_message", "latency_ms", "passed", "failed_checks", "response_text", "vars"))
    root = ET.Element("testsuites", name=f"hanzo-run {job_name} run {run_id}")
    suites: dict[str, ET.Element] = {}
    counts: dict[str, list[float]] = {}  # target -> [tests, failures, errors, seconds]
    for r in rows:
        target, code, message = r["target"], r["error_code"], r["error_message"]
        if target not in suites:
            suites[target] = ET.SubElement(root, "testsuite", name=target)
            counts[target] = [0, 0, 0, 0.0]
        seconds = (r["latency_ms"] or 0.0) / 1000
        variables = parse_vars(r["vars"])
        row = row_name({"vars": variables, "row_index": r["row_index"]})
        name = r["prompt_id"] + (f"[{row}]" if row else "") + (f"#{r['repeat_index']}" if r["repeat_index"] else "")
        case = ET.SubElement(suites[target], "testcase", classname=target, name=name, time=f"{seconds:.3f}")
        if r["row_index"] is not None:
            _properties(case, r["row_index"], variables or {})
        count = counts[target]
        count[0] += 1
        count[3] += seconds
        if r["status"] != "ok":
            count[2] += 1
            error = ET.SubElement(case, "error", type=code or "ERROR", message=message or "")
            error.text = f"{code}: {message}"
        elif r["passed"] == 0:
            count[1] += 1
            failures = json.loads(r["failed_checks"] or "[]")
            reasons = "; ".join(f"{f['check']}: {f['reason']}" for f in failures)
            failure = ET.SubElement(case, "failure", type="checks", message=reasons)
            failure.text = reasons + "\n\nanswer:\n" + (r["response_text"] or "")
    total = [0, 0, 0, 0.0]
    for target, suite in suites.items():
        tests, failures, errors, seconds = counts[target]
        suite.set("tests", str(int(tests)))
        suite.set("failures", str(int(failures)))
        suite.set("errors", str(int(errors)))
        suite.set("time", f"{seconds:.3f}")
        total = [a + b for a, b in zip(total, counts[target], strict=True)]
    for key, value in zip(("tests", "failures", "errors"), total, strict=False):
        root.set(key, str(int(value)))
    root.set("time", f"{total[3]:.3f}")
    for element in root.iter():
        element.text = element.text and _xml_safe(element.text)
        for name, attribute in element.attrib.items():
            element.set(name, _xml_safe(attribute))
    ET.indent(root)
    return ET.ElementTree(root)


# Characters XML 1.0 does not allow, even escaped (a terminal colour code in an answer, a NUL): ElementTree
# writes them as they are, and a CI system that cannot parse the file shows no results at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """``text`` with each character XML cannot hold written as its escape (``\\x1b``): shown, not dropped."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _properties(case: ET.Element, row_index: int, variables: dict[str, object]) -> None:
    """The data row's number and each of its variables, whole."""
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="row", value=str(row_index))
    for name, value in variables.items():
        ET.SubElement(properties, "property", name=VAR_PREFIX + name, value=var_cell(value))


# What ElementTree.write(path, encoding="utf-8", xml_declaration=True) puts first.
DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"


def junit_text(db: sqlite_utils.Database, run_id: int) -> str:
    return DECLARATION + ET.tostring(junit_tree(db, run_id).getroot(), encoding="unicode")


def write_junit(db_path: Path, run_id: int, path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    try:
        text = junit_text(db, run_id)
    finally:
        db.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
