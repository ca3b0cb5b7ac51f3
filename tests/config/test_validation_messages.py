"""Issue 17 item 15: job validation names the right key and the fix, and refuses what every request would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import hanzo


def problems(folder: Path, text: str, name: str = "job.yaml") -> tuple[int, list[str]]:
    job = folder / name
    job.write_text(text)
    done = hanzo("validate", job)
    return done.returncode, [line for line in done.stderr.splitlines() if " problem(s) in " not in line]


@pytest.mark.parametrize(("body", "expected"), [
    ('prompts: ["{{ w | upper }}"]\ndata: [{w: a}]\n',
     "job.yaml:2:11: prompts[0]: {{ w | upper }}: filters are not supported, only {{name}} of a data row; "
     "put the value as wanted in the data"),
    ('prompts: [{messages: [{role: user, content: "{{ w + 1 }}"}]}]\ndata: [{w: a}]\n',
     "job.yaml:2:45: prompts[0].messages[0].content: {{ w + 1 }}: expressions are not supported, only {{name}} "
     "of a data row; put the value as wanted in the data"),
])
def test_template_filters_are_refused(body: str, expected: str, isolated: Path) -> None:
    code, lines = problems(isolated, "targets: [echo/echo]\n" + body)
    assert code == 2
    assert lines == [expected]


@pytest.mark.parametrize(("body", "expected"), [
    ("prompts: [{id: 5, text: x}]\n", ["job.yaml:2:16: prompts[0].id: expected string, got number 5"]),
    ("prompts: [{text: null}]\n", ["job.yaml:2:18: prompts[0].text: expected string, got null"]),
    ("prompts:\n  - messages:\n      - {role: user, content: hi}\n"
     "      - {role: assistant, tool_calls: [{name: f, arguments: x}]}\n",
     ["job.yaml:5:61: prompts[0].messages[1].tool_calls[0].arguments: expected object, got string 'x'"]),
    ("prompts: [hi]\nparams: hot\n", ["job.yaml:3:9: params: expected object, got string 'hot'"]),
    ("targets: [{provider: echo, params: hot}]\nprompts: [hi]\n",
     ["job.yaml:1:36: targets[0].params: expected object, got string 'hot'"]),
    ("prompts: [hi]\nchecks: [{python: pc.py}]\n",
     ["job.yaml:3:19: checks[0].python: write FILE.py:function (relative to the job file) or module:function, "
      "not 'pc.py'"]),
    ('prompts: [{messages: [{role: user, content: [{image: ""}]}]}]\n',
     ["job.yaml:2:54: prompts[0].messages[0].content[0].image: empty; give an image file (relative to the job "
      "file), an https:// URL or a data: URL"]),
    ("prompts: [hi]\nresponse_schema: {type: string}\n",
     ["job.yaml:3:18: response_schema: must describe a JSON object (type: object), not string: providers' JSON "
      "modes answer objects; put the value in a property"]),
    ("prompts: [hi]\ntools: [{name: f, parameters: {type: array}}]\n",
     ["job.yaml:3:31: tools[0].parameters: must describe a JSON object (type: object), not array: tool "
      "arguments are an object; put the values in properties"]),
    ("prompts:\n  - messages:\n      - {role: user, content: hi}\n      - {role: tool, name: f, content: '1'}\n",
     ["job.yaml:5:9: prompts[0].messages[1]: a tool message answers a call, but no assistant message before it "
      "calls 'f'; add {role: assistant, tool_calls: [{name: f}]} before it"]),
])
def test_job_problems_name_the_right_key(body: str, expected: list[str], isolated: Path) -> None:
    (isolated / "pc.py").write_text("def check(answer, row, result):\n    return True\n")
    text = body if body.startswith("targets:") else "targets: [echo/echo]\n" + body
    code, lines = problems(isolated, text)
    assert code == 2
    assert lines == expected


def test_a_batch_window_the_api_refuses_is_a_file_error(isolated: Path) -> None:
    folder = isolated / "providers.d"
    folder.mkdir()
    provider = folder / "acme.yaml"
    provider.write_text("id: acme\nname: Acme\nkind: cloud\nprotocol: openai\nbase_url: https://api.acme.test/v1\n"
                        "auth:\n  env: [ACME_API_KEY]\nbatch:\n  api: openai\n  completion_window: forever\n")
    done = hanzo("validate", provider)
    assert done.returncode == 2
    assert "providers.d/acme.yaml:10:22: batch.completion_window: 'forever' is not a window; write hours or days " \
           "such as 24h (OpenAI takes only 24h)" in done.stderr


@pytest.mark.parametrize(("spec", "expected"), [
    ("1/0", "--shard 1/0: N must be at least 1 (shard K of N, K from 0, e.g. --shard 0/2 and --shard 1/2)"),
    ("4/4", "--shard 4/4: K must be less than N: 0/4 to 3/4"),
])
def test_a_shard_out_of_range_says_how_to_write_it(spec: str, expected: str, isolated: Path) -> None:
    job = isolated / "job.yaml"
    job.write_text("targets: [echo/echo]\nprompts: [hi]\n")
    done = hanzo(job, "--shard", spec)
    assert done.returncode == 2
    assert expected in done.stderr
