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
