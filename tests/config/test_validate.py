"""``hanzo-run validate`` and the checks a run makes before sending anything: exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, hanzo

GOOD_PROVIDER = """\
id: acme
name: Acme
kind: cloud
protocol: openai
base_url: https://api.acme.test/v1
auth:
  env: [ACME_API_KEY]
limits:
  requests: 30
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems_of(*files: Path) -> tuple[int, list[str]]:
    done = hanzo("validate", *files)
    return done.returncode, [line for line in done.stderr.splitlines() if " problem(s) in " not in line]


def test_shipped_files_are_valid() -> None:
    done = hanzo("validate", *sorted((REPO / "providers.d").glob("*.yaml")), *sorted((REPO / "jobs").glob("*.yaml")))
    assert done.returncode == 0, done.stderr
    assert "file(s) OK" in done.stderr


def test_wrong_type_names_file_line_and_column(isolated: Path) -> None:
    path = write(isolated / "providers.d", "acme.yaml", GOOD_PROVIDER.replace("requests: 30", "requests: thirty"))
    code, lines = problems_of(path)
    assert code == 2
    assert lines == ["providers.d/acme.yaml:9:13: limits.requests: expected integer, got string 'thirty'"]


def test_every_problem_is_reported_at_once(isolated: Path) -> None:
    text = GOOD_PROVIDER.replace("kind: cloud", "kind: remote").replace("requests: 30", "requests: 0\n  windw: 60")
    path = write(isolated / "providers.d", "acme.yaml", text)
    code, lines = problems_of(path)
    assert code == 2
    assert lines == [
        "providers.d/acme.yaml:3:7: kind: 'remote' is not one of 'cloud', 'local'",
        "providers.d/acme.yaml:9:13: limits.requests: 0 is less than the minimum of 1",
        "providers.d/acme.yaml:10:3: limits.windw: unknown key 'windw'; did you mean 'window'?",
    ]


def test_yaml_booleans_are_explained(isolated: Path) -> None:
    path = write(isolated / "providers.d", "acme.yaml", GOOD_PROVIDER.replace("name: Acme", "name: yes"))
    assert problems_of(path)[1] == [
        "providers.d/acme.yaml:2:7: name: expected string, got boolean true "
        "(YAML reads yes/no/on/off as booleans; quote it)"]


def test_id_must_match_file_name(isolated: Path) -> None:
    path = write(isolated / "providers.d", "other.yaml", GOOD_PROVIDER)
    assert problems_of(path)[1] == [
        "providers.d/other.yaml:1:5: id: id 'acme' must equal the file name; rename the file to acme.yaml "
        "or set id: other"]


@pytest.mark.parametrize(("text", "expected"), [
    ("targets: [echo/echo\nprompts: [hi]\n", "job.yaml:2:8: YAML does not parse: expected ',' or ']', but got ':'"),
    ("- just\n- a list\n", "job.yaml:1:1: expected a mapping of keys to values, the file is a list"),
    ("", "job.yaml:1:1: expected a mapping of keys to values, the file is empty"),
    ("targets: [echo/echo]\nprompts: [hi]\nprompts: [again]\n",
     "job.yaml:3:1: duplicate key 'prompts'; the earlier one would be ignored"),
    (b"targets: [echo/echo]\nprompts: [\xff]\n", "job.yaml:2: not UTF-8 text (byte 0xff); save the file as UTF-8"),
])
def test_unreadable_jobs(text: str | bytes, expected: str, isolated: Path) -> None:
    code, lines = problems_of(write(isolated, "job.yaml", text))
    assert (code, lines) == (2, [expected])


def test_unknown_provider_and_undefined_variable(isolated: Path) -> None:
    job = write(isolated, "job.yaml", """\
targets:
  - echo/echo
  - opneai/gpt-4o-mini
prompts:
  - id: q
    text: "Capital of {{country}}?"
data:
  - {city: Paris}
""")
    code, lines = problems_of(job)
    assert code == 2
    assert lines[0].startswith("job.yaml:3:5: targets[1]: unknown provider 'opneai'; known: anthropic, echo, gemini")
    assert lines[1] == ("job.yaml:6:11: prompts[0].text: {{country}} is not defined by every data row "
                        "(row variables: city)")


def test_csv_rows_with_missing_columns(isolated: Path) -> None:
    write(isolated, "rows.csv", "country,capital\nFrance,Paris\nJapan\n")
    job = write(isolated, "job.yaml", "targets: [echo/echo]\nprompts: ['{{country}}']\ndata: rows.csv\n")
    assert problems_of(job)[1] == ["rows.csv:3: row has 1 columns, the header has 2 (data of job.yaml)"]


def test_a_run_checks_before_sending(isolated: Path) -> None:
    job = write(isolated, "job.yaml", "targets: [echo/echo]\nprompts: [hi]\nrepeat: 0\n")
    done = hanzo(job)
    assert done.returncode == 2
    assert done.stderr.strip() == "job.yaml:3:9: repeat: 0 is less than the minimum of 1"
    assert not (isolated / "hanzo-runs.db").exists()


@pytest.mark.parametrize("kind", ["provider", "job"])
def test_the_schemas_are_valid_json_schema(kind: str) -> None:
    from jsonschema import Draft202012Validator

    from runner.resources import load_schema

    Draft202012Validator.check_schema(load_schema(kind))  # raises SchemaError when not


def test_one_pass_reports_schema_and_cross_file_problems_together(isolated: Path) -> None:
    """Schema problems no longer hide the unknown provider, the undefined variable and the data errors."""
    write(isolated, "rows.jsonl", '{"city": "Paris", "country": "France"}\n{"city": "Rome"}\n')
    job = write(isolated, "job.yaml", """\
targets:
  - echo/echo
  - nosuch/model
repeat: "two"
data: rows.jsonl
prompts:
  - "Capital of {{country}}? ({{city}})"
  - "{{planet}}"
""")
    code, lines = problems_of(job)
    assert code == 2
    assert lines[0] == "job.yaml:4:9: repeat: expected integer, got string 'two'"
    assert lines[1].startswith("job.yaml:3:5: targets[1]: unknown provider 'nosuch'")
    assert lines[2] == ("job.yaml:7:5: prompts[0]: {{country}} is not defined by every data row "
                        "(row variables: city; rows.jsonl:2 has no 'country')")
    assert lines[3] == ("job.yaml:8:5: prompts[1]: {{planet}} is not defined by every data row "
                        "(row variables: city)")


def test_inline_data_errors_name_the_row(isolated: Path) -> None:
    job = write(isolated, "job.yaml", """\
targets: [echo/echo]
data: [{a: 1, b: 2}, {a: 3}]
prompts: ["{{a}} {{b}}"]
""")
    assert problems_of(job) == (2, ["job.yaml:3:11: prompts[0]: {{b}} is not defined by every data row "
                                    "(row variables: a; data[1] has no 'b')"])


def test_an_inline_row_that_is_not_a_mapping_is_named_once(isolated: Path) -> None:
    # Its place and what it should be; no follow-on message that counts a string's letters as variables.
    job = write(isolated, "job.yaml", """\
targets: [echo/echo]
prompts: ["say {{city}}"]
data:
  - {city: Paris}
  - Rome
  - [1, 2]
""")
    assert problems_of(job) == (2, ["job.yaml:5:5: data[1]: expected object, got string 'Rome'",
                                    "job.yaml:6:5: data[2]: expected object, got list"])


def test_a_lone_surrogate_is_a_validation_error_not_a_crash(isolated: Path) -> None:
    """A prompt or a data row holding half a UTF-16 pair can be neither sent nor stored: refused with its place."""
    write(isolated, "rows.jsonl", '{"city": "Paris"}\n{"city": "Ro\\ud800me"}\n')
    job = write(isolated, "job.yaml", """\
targets: [echo/echo]
data: rows.jsonl
prompts:
  - "{{city}}"
""")
    assert problems_of(job) == (2, ["rows.jsonl:2: \\ud800 is half of a UTF-16 pair, not a character; remove it "
                                    "(data of job.yaml)"])
    bad_prompt = write(isolated, "prompt.yaml", 'targets: [echo/echo]\nprompts:\n  - "half \\ud800 pair"\n')
    assert problems_of(bad_prompt) == (2, ["prompt.yaml:3:5: YAML does not parse: \\ud800 is half of a UTF-16 "
                                           "pair, not a character; remove it"])
    run = hanzo(bad_prompt, "--db", isolated / "r.db")
    assert run.returncode == 2 and "Traceback" not in run.stderr and "\\ud800" in run.stderr
