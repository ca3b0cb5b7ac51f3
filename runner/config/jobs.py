"""Job files: loading and checking them, and expanding them lazily into work items.

Work items = targets x prompts x data rows x repeat. Each has a stable ``item_key``
(a hash of target, rendered messages, params and repeat index): the unit of resume.
Items are produced one at a time per target, never all held in memory.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, Problem
from .checks import Checks, check_key, check_places, check_problems
from .columnar import check_columnar, data_files, is_columnar, read_columnar
from .durations import parse_duration
from .files import Document, check_schema, read_document, unicode_problem
from .media import limit_for
from .messages import check_images, image_sources, is_rich, render_message, text_of, unanswered_tool_results
from .outputs import ResponseSpec, ToolSet, output_problems, response_spec, tool_set
from .providers import Limits, ProviderRegistry, display_path
from .templating import Row, render, unsupported_in, variables_in


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    params: Mapping[str, Any]  # job params with the target's own on top
    label: str
    response: ResponseSpec | None = None  # the target's own response_schema / response_format


@dataclass(frozen=True)
class Prompt:
    id: str
    messages: tuple[Mapping[str, Any], ...]  # templates, system first when set
    checks: tuple[Mapping[str, Any], ...] = ()
    response: ResponseSpec | None = None
    tools: ToolSet | None = None
    rich: bool = False  # some message has parts, tool calls or tool results (config/messages.py)


@dataclass(frozen=True, slots=True)
class WorkItem:
    target: Target
    prompt: Prompt
    row_index: int | None
    repeat_index: int
    messages: tuple[Mapping[str, Any], ...]  # rendered
    item_key: str
    row: Row
    response: ResponseSpec | None = None  # JSON asked of the model (prompt's, else target's, else job's)
    tools: ToolSet | None = None

    @property
    def row_hash(self) -> str | None:
        return row_hash(self.row) if self.row_index is not None else None

    @property
    def prompt_text(self) -> str:
        """The last user message: what the results table shows as the prompt (images by reference)."""
        content = next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")
        return content if isinstance(content, str) else text_of(content)


@dataclass(frozen=True)
class Job:
    name: str
    path: Path
    targets: tuple[Target, ...]
    prompts: tuple[Prompt, ...]
    data: tuple[Row, ...] | Path | None
    repeat: int
    stream: bool
    concurrency: int
    checks: tuple[Mapping[str, Any], ...]
    budget_usd: float | None
    output: Path
    hash: str  # of what makes the items (targets, prompts, data, repeat): resume refuses when it changed
    judge_target: str | None = None  # grades the judge checks that name no target
    # Each judge check's grader as written ("anthropic", "openai/gpt-4o") -> its Target.
    graders: Mapping[str, Target] = field(default_factory=lambda: MappingProxyType({}))
    cache: bool = False  # answer from the response cache (runner/store/cache.py)
    cache_ttl_s: float = 14 * 24 * 3600.0
    batch: bool = False  # send through the providers' batch APIs where they have one
    # Provider id -> its limits as this job tightens them (``limits:``); other providers keep their files'.
    limits: Mapping[str, Limits] = field(default_factory=lambda: MappingProxyType({}))

    response: ResponseSpec | None = None  # the job's response_schema / response_format
    tools: ToolSet | None = None
    notes: tuple[Problem, ...] = ()  # worth saying, not wrong (``validate`` prints them)

    def rows(self) -> Iterator[tuple[int | None, Row]]:
        """Data rows, read lazily from their file; one empty row when the job has no data."""
        if self.data is None:
            yield None, {}
        elif isinstance(self.data, tuple):
            yield from enumerate(self.data)
        else:
            yield from enumerate(read_rows(self.data))

    def items_for(self, target: Target) -> Iterator[WorkItem]:
        base = self.path.parent
        for prompt in self.prompts:
            response = prompt.response or target.response or self.response
            tools = prompt.tools if prompt.tools is not None else self.tools
            asks = (response, tools) if response or tools else None
            for row_index, row in self.rows():
                if prompt.rich:
                    messages = tuple(render_message(m, row, base) for m in prompt.messages)
                else:
                    messages = tuple({"role": m["role"], "content": render(m["content"], row)}
                                     for m in prompt.messages)
                for r in range(self.repeat):
                    key = item_key(target, prompt.id, row_index, messages, r, asks)
                    yield WorkItem(target, prompt, row_index, r, messages, key, row, response, tools)

    def count_rows(self) -> int:
        return sum(1 for _ in self.rows())

    def count_items(self) -> int:
        return len(self.targets) * len(self.prompts) * self.count_rows() * self.repeat

    @property
    def has_checks(self) -> bool:
        return bool(self.checks) or any(p.checks for p in self.prompts)

    def compile_checks(self) -> Checks:
        """The job's checks and each prompt's own, compiled once (regexes, schemas) for the run."""
        return Checks.compile(self.checks, {p.id: p.checks for p in self.prompts}, self.path.parent,
                              self.judge_target)


def items_hash(targets: list[Target], prompts: list[Prompt], rows: tuple[Row, ...] | Path | None,
               repeat: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([[(t.provider, t.model, dict(t.params), *_own_label(t)) for t in targets],
                         [(p.id, p.messages) for p in prompts], repeat,
                         rows if not isinstance(rows, Path) else None], sort_keys=True, default=str).encode())
    if isinstance(rows, Path):
        for file in data_files(rows):
            with file.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def item_key(target: Target, prompt_id: str, row_index: int | None, messages: tuple[Mapping[str, Any], ...],
             repeat_index: int, asks: Any = None) -> str:
    """Stable across runs of the same job: the same item always gets the same key.

    ``asks`` (the response schema and tools, when set) and an explicit ``label`` are part of the key:
    changing what is asked makes new items. Without them the key is what it always was."""
    parts: list[Any] = [target.provider, target.model, prompt_id, row_index, messages, target.params, repeat_index]
    if asks is not None:
        parts.append(asks)
    parts.extend({"label": label} for label in _own_label(target))
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def row_hash(row: Row) -> str:
    """A data row's variables as a short hash, stored with each result: rescore and diff find an answer's
    row by it, wherever the row moved in the data."""
    blob = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _own_label(target: Target) -> tuple[str, ...]:
    """The target's label when the job gave it one: two labels of one model with the same params are two
    sets of items, never one row overwritten. An unlabelled target keeps the key (and the job the hash)
    it always had, so runs written before labels counted still resume."""
    return (target.label,) if target.label != f"{target.provider}/{target.model}" else ()


def read_rows(path: Path) -> Iterator[Row]:
    """Rows of a .csv (header line first), .jsonl or .parquet file or a saved Dataset, one at a time."""
    if is_columnar(path):
        yield from read_columnar(path)
        return
    with path.open(encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            yield from csv.DictReader(f)
        else:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def check_rows(path: Path, display: str, missing_at: dict[str, str] | None = None) -> tuple[set[str], list[Problem]]:
    """Every variable the rows define (all rows must define the same), and what is wrong with them.

    ``missing_at`` is filled with the first row (``rows.jsonl:17``) lacking each variable some rows have.
    """
    if is_columnar(path):
        return check_columnar(path, display)
    if path.suffix not in (".csv", ".jsonl"):
        return set(), [Problem(display, None, None, "", "data must be a .csv, .jsonl or .parquet file, or a folder "
                               "a datasets Dataset was saved to (save_to_disk)")]
    problems: list[Problem] = []
    columns: set[str] | None = None
    missing_at = {} if missing_at is None else missing_at
    first_line = ""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            if path.suffix == ".csv":
                reader = csv.reader(f)
                header = next(reader, None)
                if not header:
                    empty = "CSV file is empty; the first line must name the columns"
                    return set(), [Problem(display, 1, None, "", empty)]
                columns = set(header)
                for line_no, fields in enumerate(reader, start=2):
                    if fields and len(fields) != len(header):
                        problems.append(Problem(display, line_no, None, "",
                                                f"row has {len(fields)} columns, the header has {len(header)}"))
            else:
                for line_no, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        problems.append(Problem(display, line_no, e.colno, "", f"not JSON: {e.msg}"))
                        continue
                    except ValueError as e:  # a number too long to convert
                        problems.append(Problem(display, line_no, None, "", f"not usable JSON: {str(e)[:80]}"))
                        continue
                    if not isinstance(row, dict):
                        problems.append(Problem(display, line_no, 1, "", "each line must be a JSON object"))
                        continue
                    unusable = unicode_problem(row)
                    if unusable:
                        problems.append(Problem(display, line_no, None, "", f"{unusable}; remove it"))
                    for name in set(row) ^ (columns if columns is not None else set(row)):
                        missing_at.setdefault(name, f"{display}:{line_no}" if name not in row else first_line)
                    if columns is None:
                        first_line = f"{display}:{line_no}"
                    columns = set(row) if columns is None else columns & set(row)
    except csv.Error as e:  # a NUL byte, a field over csv.field_size_limit()
        return columns or set(), [Problem(display, reader.line_num or None, None, "", f"CSV does not parse: {e}")]
    except FileNotFoundError:
        return set(), [Problem(display, None, None, "", "data file not found")]
    except UnicodeDecodeError:
        return set(), [Problem(display, None, None, "", "data file is not UTF-8 text; save it as UTF-8")]
    except OSError as e:
        return set(), [Problem(display, None, None, "", f"cannot read data file: {e.strerror or e}")]
    return columns or set(), problems


def _inline_variables(rows: tuple[Row, ...]) -> tuple[set[str], dict[str, str]]:
    """The variables every inline row defines, and the first row (``data[7]``) lacking each one some rows have.

    Two passes over the rows, so the work grows with the rows, not with their square. A row that is not a
    mapping is left out: the schema says so at its place, and its letters are no variables."""
    mappings = [(index, row) for index, row in enumerate(rows) if isinstance(row, Mapping)]
    if not mappings:
        return set(), {}
    names = {tuple(row) for _, row in mappings}  # each distinct list of names once: usually one
    every: set[str] = set().union(*names)
    common = set.intersection(*map(set, names))
    missing_at: dict[str, str] = {}
    if every != common:
        for index, row in mappings:
            for name in every.difference(row):
                missing_at.setdefault(name, f"data[{index}]")
    return common, missing_at


def parse_target(spec: str | Mapping[str, Any], job_params: Mapping[str, Any],
                 default_model: Callable[[str], str | None]) -> Target | str:
    """A Target, or the reason it is not one."""
    if isinstance(spec, str):
        provider, _, model = spec.partition("/")
        params: Mapping[str, Any] = {}
        label = None
    else:
        provider, model = spec["provider"], spec.get("model", "")
        params, label = spec.get("params", {}), spec.get("label")
    if not model:
        model = default_model(provider) or ""
        if not model:
            return f"no model given and provider '{provider}' has no default; write {provider}/MODEL"
    merged = {**job_params, **params}
    if isinstance(merged.get("stop"), str):
        merged["stop"] = [merged["stop"]]
    return Target(provider, model, MappingProxyType(merged), label or f"{provider}/{model}")


def load_job(path: Path, registry: ProviderRegistry, *,
             selected_model: Callable[[str], str | None] = lambda _: None) -> Job:
    """Load and check a job file and every provider it uses; ConfigError lists every problem."""
    doc, problems = read_document(path, display_path(path))
    return job_from_document(doc, problems, registry, selected_model=selected_model)


def job_from_document(doc: Document | None, problems: list[Problem], registry: ProviderRegistry, *,
                      selected_model: Callable[[str], str | None] = lambda _: None) -> Job:
    """``load_job`` of a file already read (``read_document``'s answer), so ``validate`` parses it once."""
    if doc is None or not isinstance(doc.data, dict):
        raise ConfigError(problems)
    problems += _schema_problems(doc)
    if not problems:
        job, build_problems = _build(doc, registry, selected_model)
    else:
        # The cross-file checks (providers, {{var}}, data files) run even when the file has other problems,
        # so one pass shows everything. On a document of the wrong shape they may fail: the problems
        # already found are then the report.
        try:
            job, build_problems = _build(doc, registry, selected_model)
        except Exception:
            job, build_problems = None, []
    problems += [p for p in build_problems if p not in problems]
    if problems or job is None:
        raise ConfigError(problems)
    return job


def _schema_problems(doc: Document) -> list[Problem]:
    """The job file's schema problems. Inline rows are checked one per shape (their keys and the types of
    their values: all the schema asks of a row), so 100,000 rows of one shape are one check, not 100,000.
    When a row is wrong, every row is checked as written: each bad one is named at its own line."""
    rows = doc.data.get("data")
    if not isinstance(rows, list):
        return check_schema(doc, "job")
    doc.data["data"] = list({_shape(row): row for row in rows}.values())
    try:
        problems = check_schema(doc, "job")
    finally:
        doc.data["data"] = rows
    if any(p.path == "data" or p.path.startswith("data[") for p in problems):
        return check_schema(doc, "job")
    return problems


def _shape(row: Any) -> Any:
    """What the schema checks of an inline row: its keys and the types of its values."""
    return (tuple(row), tuple(map(type, row.values()))) if isinstance(row, dict) else type(row)


def _build(doc: Document, registry: ProviderRegistry,
           selected_model: Callable[[str], str | None]) -> tuple[Job | None, list[Problem]]:
    data: dict[str, Any] = doc.data
    base = doc.path.parent
    problems = _asks_problems(doc)
    asks_ok = not problems  # schema files are read only when they are readable
    job_tools = tool_set(data, None) if asks_ok else None

    def default_model(provider_id: str) -> str | None:
        if provider_id not in registry:
            return None
        provider, _ = registry.load(provider_id)
        return selected_model(provider_id) or (provider.default_model if provider else None)

    targets: list[Target] = []
    placed: dict[str, int] = {}  # label -> its index in the file, to name both places of a duplicate
    for i, spec in enumerate(data["targets"]):
        provider_id = spec if isinstance(spec, str) else spec["provider"]
        provider_id = provider_id.partition("/")[0]
        if provider_id not in registry:
            known = ", ".join(registry.ids())
            problems.append(doc.problem(["targets", i], f"unknown provider '{provider_id}'; known: {known} "
                                        f"(or add providers.d/{provider_id}.yaml)"))
            continue
        _, provider_problems = registry.load(provider_id)
        if provider_problems:
            problems.extend(provider_problems)
            problems.append(doc.problem(["targets", i], f"provider '{provider_id}' has an invalid file (see above)"))
            continue
        target = parse_target(spec, data.get("params", {}), default_model)
        if isinstance(target, str):
            problems.append(doc.problem(["targets", i], target))
        elif target.label in placed:
            first = doc.problem(["targets", placed[target.label]], "")
            problems.append(doc.problem(["targets", i], f"target '{target.label}' is listed twice (also "
                                        f"targets[{placed[target.label]}], line {first.line}); give one "
                                        "a different label"))
        else:
            placed[target.label] = i
            if asks_ok and not isinstance(spec, str):
                target = dataclasses.replace(target, response=response_spec(spec, base))
            targets.append(target)

    system = data.get("system")
    notes: list[Problem] = []  # what validate says without failing: which system message wins
    prompts: list[Prompt] = []
    for i, spec in enumerate(data["prompts"]):
        if isinstance(spec, str):
            spec = {"text": spec}
        pid = spec.get("id") or f"p{i + 1}"
        if "messages" in spec:
            messages = tuple(spec["messages"])
            for j, name in unanswered_tool_results(messages):
                problems.append(doc.problem(["prompts", i, "messages", j], "a tool message answers a call, but no "
                                            f"assistant message before it calls '{name}'; add {{role: assistant, "
                                            f"tool_calls: [{{name: {name}}}]}} before it"))
            own = next((j for j, m in enumerate(messages) if m.get("role") == "system"), None)
            if system and own is None:
                messages = ({"role": "system", "content": system}, *messages)
            elif system and own is not None:
                notes.append(doc.problem(["prompts", i, "messages", own], "note: this prompt's own system "
                                         "message is sent; the job's system: is not applied to it"))
        else:
            own_system = spec.get("system", system)
            messages = ({"role": "system", "content": own_system},) if own_system else ()
            messages += ({"role": "user", "content": spec["text"]},)
        if any(p.id == pid for p in prompts):
            problems.append(doc.problem(["prompts", i, "id"], f"prompt id '{pid}' is used twice"))
        prompts.append(Prompt(pid, messages, tuple(spec.get("checks", ())),
                              response_spec(spec, base) if asks_ok else None,
                              tool_set(spec, job_tools) if asks_ok else None,
                              any(is_rich(m) for m in messages)))

    rows: tuple[Row, ...] | Path | None = None
    variables: set[str] = set()
    missing_at: dict[str, str] = {}  # variable -> the first row without it, for the message
    source = data.get("data")
    if isinstance(source, str):
        rows = (base / source).resolve()
        variables, row_problems = check_rows(rows, display_path(rows), missing_at)
        problems.extend(Problem(p.file, p.line, p.col, p.path, f"{p.message} (data of {doc.display})")
                        for p in row_problems)
    elif isinstance(source, list):
        rows = tuple(source)
        variables, missing_at = _inline_variables(rows)

    # Every {{var}} must be defined by the data rows (all of them); nothing else goes in braces.
    for i, prompt in enumerate(prompts):
        for j, message in enumerate(prompt.messages):
            template = message["content"] if not prompt.rich else dict(message)
            for reason in unsupported_in(template):
                problems.append(doc.problem(_message_place(data["prompts"][i], i, prompt, j), reason))
            for name in variables_in(template):
                if name not in variables:
                    have = ", ".join(sorted(variables)) or "none"
                    lacking = f"; {missing_at[name]} has no {name!r}" if name in missing_at else ""
                    problems.append(doc.problem(_message_place(data["prompts"][i], i, prompt, j),
                                                f"{{{{{name}}}}} is not defined by every data row "
                                                f"(row variables: {have}{lacking})"))
    problems.extend(check_problems(doc, variables))
    graders = _graders(doc, registry, default_model, problems)
    limits = _tightened_limits(doc, registry, problems)

    if not problems:
        problems.extend(_image_problems(doc, registry, targets, prompts, rows))

    if problems:
        return None, problems
    digest = items_hash(targets, prompts, rows, data["repeat"])
    job = Job(
        name=data.get("name") or doc.path.stem,
        path=doc.path,
        targets=tuple(targets),
        prompts=tuple(prompts),
        data=rows,
        repeat=data["repeat"],
        stream=data["stream"],
        concurrency=data["concurrency"],
        checks=tuple(data.get("checks", ())),
        budget_usd=data.get("budget_usd"),
        output=base / data["output"],
        hash=digest,
        judge_target=data.get("judge_target"),
        graders=MappingProxyType(graders),
        cache=data["cache"],
        cache_ttl_s=parse_duration(data["cache_ttl"]),
        batch=data["batch"],
        limits=MappingProxyType(limits),

        response=response_spec(data, base),
        tools=job_tools,
        notes=tuple(notes),
    )
    return job, []


def _message_place(spec: Any, i: int, prompt: Prompt, j: int) -> list[str | int]:
    """Where message ``j`` of prompt ``i`` is written in the job file (the job's system: when it was added)."""
    message = prompt.messages[j]
    if isinstance(spec, dict) and "messages" in spec:
        added = len(prompt.messages) - len(spec["messages"])  # 1 when the job's system: went first
        if j < added:
            return ["system"]
        return ["prompts", i, "messages", j - added, *(["content"] if isinstance(message.get("content"), str) else [])]
    if message["role"] == "user":
        return ["prompts", i, "text"] if isinstance(spec, dict) else ["prompts", i]
    return ["prompts", i, "system"] if isinstance(spec, dict) and "system" in spec else ["system"]


def _tightened_limits(doc: Document, registry: ProviderRegistry, problems: list[Problem]) -> dict[str, Limits]:
    """The job's ``limits:`` over each provider's own; a looser value is a problem, not clamped: a job that
    asks for more than the provider file allows would silently run slower than written, and the fix (lower the
    job's value, or raise the provider file's) is the user's to choose."""
    tightened: dict[str, Limits] = {}
    for provider_id, given in (doc.data.get("limits") or {}).items():
        where: list[str | int] = ["limits", provider_id]
        if provider_id not in registry:
            problems.append(doc.problem(where, f"unknown provider '{provider_id}'; known: {', '.join(registry.ids())}",
                                        key=True))
            continue
        provider, _ = registry.load(provider_id)
        if provider is None:
            continue  # its file's problems are reported where a target or grader names it
        own = provider.limits
        limits = dataclasses.replace(own, **given)
        file = display_path(provider.source)
        looser = []
        if limits.requests / limits.window > own.requests / own.window or limits.requests > own.requests:
            looser.append(f"{limits.requests} requests / {limits.window:g} s is more than the provider's "
                          f"{own.requests} / {own.window:g} s")
        if limits.tokens is not None and own.tokens is not None \
                and limits.tokens / limits.window > own.tokens / own.window:
            looser.append(f"{limits.tokens} tokens / {limits.window:g} s is more than the provider's "
                          f"{own.tokens} / {own.window:g} s")
        if limits.concurrency > own.concurrency:
            looser.append(f"concurrency {limits.concurrency} is more than the provider's {own.concurrency}")
        if looser:
            problems.append(doc.problem(where, f"a job may only tighten a provider's limits: {'; '.join(looser)} "
                                        f"({file}); lower the job's value, or raise it in the provider file",
                                        key=True))
        else:
            tightened[provider_id] = limits
    return tightened


def _graders(doc: Document, registry: ProviderRegistry, default_model: Callable[[str], str | None],
             problems: list[Problem]) -> dict[str, Target]:
    """The grader of every judge check (its own target, else the job's judge_target), resolved; what is
    wrong with them goes to ``problems``."""
    default = doc.data.get("judge_target")
    graders: dict[str, Target] = {}
    for where, spec in check_places(doc.data):
        if check_key(spec) != "judge":
            continue
        own = spec["judge"].get("target")
        written = own or default
        at: list[str | int] = [*where, "judge", "target"] if own else [*where, "judge"]
        if written is None:
            problems.append(doc.problem(at, "a judge check needs a grader: give it target: provider/model, "
                                        "or set judge_target for the whole job"))
            continue
        if written in graders:
            continue
        if not own:
            at = ["judge_target"]
        provider_id = written.partition("/")[0]
        if provider_id not in registry:
            problems.append(doc.problem(at, f"unknown provider '{provider_id}'; known: {', '.join(registry.ids())} "
                                        f"(or add providers.d/{provider_id}.yaml)"))
            continue
        if registry.load(provider_id)[1]:
            problems.append(doc.problem(at, f"provider '{provider_id}' has an invalid file"))
            continue
        target = parse_target(written, {}, default_model)
        if isinstance(target, str):
            problems.append(doc.problem(at, target))
        else:
            graders[written] = target
    return graders


def _asks_problems(doc: Document) -> list[Problem]:
    """What is wrong with response schemas and tools at job, target and prompt level beyond their shape."""
    data = doc.data
    base = doc.path.parent
    places: list[tuple[list[str | int], Mapping[str, Any], list[str]]] = [([], data, [])]
    job_tools = [t["name"] for t in data.get("tools", ())]
    places += [(["targets", i], t, []) for i, t in enumerate(data["targets"]) if isinstance(t, dict)]
    places += [(["prompts", i], p, job_tools) for i, p in enumerate(data["prompts"]) if isinstance(p, dict)]
    return [doc.problem([*where, *at], message)
            for where, spec, inherited in places for at, message in output_problems(spec, base, inherited)]


def _image_problems(doc: Document, registry: ProviderRegistry, targets: list[Target], prompts: list[Prompt],
                    rows: tuple[Row, ...] | Path | None) -> list[Problem]:
    """Every image part checked for every target's provider, templated ones per data row."""
    sinks: dict[str, tuple[str, int | None]] = {}
    for target in targets:
        provider = registry.get(target.provider)
        sinks[target.provider] = (provider.protocol, limit_for(provider.protocol, provider.max_image_bytes))
    probe = Job("", doc.path, (), (), rows, 1, False, 1, (), None, doc.path, "")
    problems: list[Problem] = []
    for i, prompt in enumerate(prompts):
        for j, message in enumerate(prompt.messages):
            for k, source in image_sources(message):
                at = [*_message_place(doc.data["prompts"][i], i, prompt, j), "content", k, "image"]
                for message_text in check_images(source, probe.rows(), doc.path.parent, sinks):
                    problems.append(doc.problem(at, message_text))
    return problems
