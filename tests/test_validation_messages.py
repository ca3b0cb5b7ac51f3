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
