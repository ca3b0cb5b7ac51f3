"""Images, structured output, tool calls, reasoning and cached tokens (issue 13), end to end
against the fake server on every built-in provider, and the job-file errors they can cause."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from runner.config.providers import Pricing
from runner.engine.costing import price
from tests.conftest import FLAVORS, REPO, hanzo, point_at, write_job, write_providers
from tests.conftest import dict_rows as rows
from tests.fakes import FakeServer

IMAGE = REPO / "jobs" / "images" / "red-square.png"
MODEL = "m-think-cache"  # the fake reports reasoning and cached tokens for such names
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CITY = {"type": "object", "additionalProperties": False, "required": ["city", "population"],
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}
PRICING = {"input": 1.0, "output": 4.0, "cached_input": 0.25}



def media_job(folder: Path, *, stream: bool) -> Path:
    (folder / "images").mkdir(exist_ok=True)
    (folder / "images" / "red-square.png").write_bytes(IMAGE.read_bytes())
    targets: list[Any] = [f"{p}/{MODEL}" for p in FLAVORS]
    targets.append({"provider": "groq", "model": "llama-novision", "label": "groq-text-only"})
    return write_job(folder, {
        "name": "media",
        "targets": targets,
        "data": [{"file": "red-square.png", "city": "Paris"}],
        "prompts": [
            {"id": "vision", "messages": [{"role": "user", "content": [
                {"text": "What colour is this square?"}, {"image": "images/{{file}}"}]}]},
            {"id": "extract", "text": "Name a city like {{city}}", "response_schema": CITY},
            {"id": "tools", "text": "What is the weather in {{city}}", "tool_choice": "required",
             "tools": [{"name": "get_weather", "description": "Current weather of a city", "parameters": WEATHER}],
             "checks": [{"tool_called": "get_weather"}, {"tool_args": {"get_weather": {"city": "{{city}}"}}}]},
        ],
        "params": {"max_tokens": 200},
        "stream": stream,
        "output": "out.db",
    })


def providers_with_prices(fake: FakeServer, folder: Path) -> Path:
    data = {}
    for pid in FLAVORS:
        data[pid] = point_at(fake, pid)
        data[pid]["models"] = {**data[pid].get("models", {}), "known": [{"id": MODEL, "pricing": PRICING}]}
    return write_providers(folder, data)


def image_in(family: str, body: dict[str, Any]) -> tuple[str, bytes]:
    """(media type, bytes) of the one image in a recorded request, read from the protocol's own shape."""
    if family == "openai":
        part = body["messages"][0]["content"][1]
        assert part["type"] == "image_url"
        head, _, data = part["image_url"]["url"].partition(",")
        return head.removeprefix("data:").removesuffix(";base64"), base64.b64decode(data)
    if family == "anthropic":
        block = body["messages"][0]["content"][1]
        assert block["type"] == "image" and block["source"]["type"] == "base64"
        return block["source"]["media_type"], base64.b64decode(block["source"]["data"])
    if family == "gemini":
        inline = body["contents"][0]["parts"][1]["inlineData"]
        return inline["mimeType"], base64.b64decode(inline["data"])
    message = body["messages"][0]
    assert message["content"] == "What colour is this square?"
    (data,) = message["images"]
    return "image/png", base64.b64decode(data)


def family_of(flavor: str) -> str:
    return flavor if flavor in ("anthropic", "gemini", "ollama") else "openai"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_images_json_and_tools_on_every_builtin_provider(stream: bool, fake: FakeServer, keys: dict[str, str],
                                                        isolated: Path, tmp_path: Path) -> None:
    job = media_job(isolated, stream=stream)
    done = hanzo(job, "--providers-dir", providers_with_prices(fake, tmp_path / "providers"))
    assert done.returncode in (0, 1), done.stderr + done.stdout
    results = {(r["target"], r["prompt_id"]): r for r in rows(isolated / "out.db", "SELECT * FROM results")}
    assert len(results) == 9 * 3

    # A model without vision: a clear per-item error from the provider, the other prompts still answered.
    refused = results[("groq-text-only", "vision")]
    assert (refused["status"], refused["error_code"], refused["http_status"]) == ("error", "CLIENT_ERROR", 400)
    assert "image_url is only supported by certain models" in refused["error_message"]
    assert results[("groq-text-only", "tools")]["status"] == "ok"

    by_body = {(r.flavor, _prompt_kind(r.json)): r.json for r in fake.requests if r.chat}
    for provider, flavor in FLAVORS.items():
        family = family_of(flavor)
        target = f"{provider}/{MODEL}"
        vision, extract, tools = (results[(target, p)] for p in ("vision", "extract", "tools"))
        for r in (vision, extract, tools):
            assert r["status"] == "ok", r

        # The image arrives intact, in the protocol's shape; the database keeps only a reference.
        assert image_in(family, by_body[(flavor, "vision")]) == ("image/png", IMAGE.read_bytes())
        assert vision["prompt"].startswith("What colour is this square? [image: images/red-square.png sha256:")

        # JSON asked for in each protocol's way, parsed, stored and checked against the schema.
        body = by_body[(flavor, "extract")]
        if family == "openai":
            assert body["response_format"] == {"type": "json_schema", "json_schema": {
                "name": "response", "schema": CITY, "strict": True}}
        elif family == "anthropic":
            assert body["output_config"] == {"format": {"type": "json_schema", "schema": CITY}}
        elif family == "gemini":
            assert body["generationConfig"]["responseMimeType"] == "application/json"
            assert body["generationConfig"]["responseJsonSchema"] == CITY
        else:
            assert body["format"] == CITY
        assert json.loads(extract["response_json"]) == {"city": "Paris", "population": 1}
        assert (extract["passed"], extract["failed_checks"]) == (1, None)

        # Tools offered in each protocol's way; the call comes back parsed, and the checks pass.
        body = by_body[(flavor, "tools")]
        if family == "openai":
            assert body["tools"] == [{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather of a city", "parameters": WEATHER}}]
            assert body["tool_choice"] == "required"
        elif family == "anthropic":
            assert body["tools"] == [{"name": "get_weather", "description": "Current weather of a city",
                                      "input_schema": WEATHER}]
            assert body["tool_choice"] == {"type": "any"}
        elif family == "gemini":
            assert body["tools"] == [{"functionDeclarations": [{
                "name": "get_weather", "description": "Current weather of a city", "parametersJsonSchema": WEATHER}]}]
            assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
        else:
            assert body["tools"][0]["function"]["parameters"] == WEATHER and "tool_choice" not in body
        assert json.loads(tools["tool_calls"]) == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
        assert tools["finish_reason"] == "tool_calls"
        assert (tools["passed"], tools["failed_checks"]) == (1, None)

        # Reasoning and cached tokens where the protocol reports them (Anthropic counts thinking
        # inside output_tokens only; Ollama reports neither).
        expected_reasoning = {"openai": 3, "gemini": 3}.get(family)
        expected_cached = {"openai": 4, "gemini": 4, "anthropic": 4}.get(family)
        assert (extract["reasoning_tokens"], extract["cached_input_tokens"]) == (expected_reasoning,
                                                                                expected_cached), provider
        if provider != "openrouter":  # OpenRouter states its own cost
            cached = expected_cached or 0
            hand = ((extract["input_tokens"] - cached) * 1.0 + cached * 0.25 + extract["output_tokens"] * 4.0) / 1e6
            assert extract["cost_usd"] == pytest.approx(hand), provider

    # The end-of-run table shows the reasoning and cached tokens.
    assert "reasoning" in done.stdout and "cached in" in done.stdout

    # Image bytes never reach the database.
    encoded = base64.b64encode(IMAGE.read_bytes())
    assert encoded not in (isolated / "out.db").read_bytes()


def _prompt_kind(body: Any) -> str:
    text = json.dumps(body)
    return "vision" if "colour" in text else "tools" if "weather in" in text else "extract"


def test_reasoning_tokens_are_billed_once_and_cached_input_at_its_price() -> None:
    pricing = Pricing(1.0, 4.0, "test", cached_input=0.25)
    # 100 input of which 40 cached; 30 output of which 10 reasoning (already inside the 30).
    assert price(pricing, 100, 30, 40) == pytest.approx((60 * 1.0 + 40 * 0.25 + 30 * 4.0) / 1e6)
    # Without a cached price, cached tokens cost what any input token costs.
    assert price(Pricing(1.0, 4.0, "test"), 100, 30, 40) == pytest.approx((100 * 1.0 + 30 * 4.0) / 1e6)


def test_reasoning_params_map_to_each_protocol(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                               tmp_path: Path) -> None:
    job = write_job(isolated, {
        "targets": [f"{p}/{MODEL}" for p in ("openai", "anthropic", "gemini", "ollama")],
        "prompts": ["Think about it"],
        "params": {"max_tokens": 100, "temperature": 0.5, "reasoning": {"effort": "low", "budget_tokens": 2048}},
        "output": "out.db"})
    done = hanzo(job, "--providers-dir", providers_with_prices(fake, tmp_path / "providers"))
    assert done.returncode == 0, done.stderr
    bodies = {r.flavor: r.json for r in fake.requests if r.chat}
    assert bodies["openai"]["reasoning_effort"] == "low"
    assert bodies["anthropic"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert bodies["anthropic"]["max_tokens"] == 2148 and "temperature" not in bodies["anthropic"]
    assert bodies["gemini"]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048}
    assert bodies["ollama"]["think"] is True


def test_tool_history_is_paired_in_each_protocol(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                 tmp_path: Path) -> None:
    job = write_job(isolated, {
        "targets": [f"{p}/{MODEL}" for p in ("openai", "anthropic", "gemini", "ollama")],
        "prompts": [{"messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            {"role": "tool", "name": "get_weather", "content": '{"temp_c": 21}'},
            {"role": "user", "content": "And should I take a coat?"}]}],
        "output": "out.db"})
    done = hanzo(job, "--providers-dir", providers_with_prices(fake, tmp_path / "providers"))
    assert done.returncode == 0, done.stderr
    bodies = {r.flavor: r.json for r in fake.requests if r.chat}
    openai = bodies["openai"]["messages"]
    assert openai[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert openai[2] == {"role": "tool", "tool_call_id": "call_1_0", "content": '{"temp_c": 21}'}
    anthropic = bodies["anthropic"]["messages"]
    assert anthropic[1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1_0", "name": "get_weather", "input": {"city": "Paris"}}]}
    assert anthropic[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1_0", "content": '{"temp_c": 21}'}]}
    gemini = bodies["gemini"]["contents"]
    assert gemini[1] == {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                                      "args": {"city": "Paris"}}}]}
    assert gemini[2] == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                                         "response": {"temp_c": 21}}}]}
    ollama = bodies["ollama"]["messages"]
    assert ollama[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert ollama[2] == {"role": "tool", "tool_name": "get_weather", "content": '{"temp_c": 21}'}


# ---------------------------------------------------------------- job-file errors, before anything is sent


def validate(folder: Path, data: dict[str, Any], providers: Path) -> str:
    job = write_job(folder, data)
    done = hanzo("validate", job, "--providers-dir", providers)
    assert done.returncode == 2, done.stdout + done.stderr
    return done.stderr + done.stdout


def image_prompt(source: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": "Describe"}, {"image": source}]}]}


def test_image_problems_are_reported_with_their_place(fake_providers: Path, isolated: Path) -> None:
    (isolated / "notes.png").write_text("not an image at all")
    (isolated / "big.png").write_bytes(IMAGE.read_bytes() + b"\0" * (5 * 1024 * 1024))
    out = validate(isolated, {
        "targets": ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "ollama/llama3.2"],
        "data": [{"f": "red-square.png"}, {"f": "gone.png"}],
        "prompts": [image_prompt("missing.png"), image_prompt("notes.png"), image_prompt("big.png"),
                    image_prompt("https://example.com/cat.png"), image_prompt("{{f}}")],
    }, fake_providers)
    assert "job.yaml:13:14: prompts[0].messages[0].content[1].image: image file missing.png not found " \
           "(relative to the job file)" in out
    assert "prompts[1].messages[0].content[1].image: image notes.png is not a PNG, JPEG, GIF or WebP image " \
           "(judged by its content)" in out
    assert "prompts[2].messages[0].content[1].image: image big.png is 5.0 MB, over provider 'anthropic''s " \
           "limit of 5.0 MB per image" in out
    assert "prompts[3].messages[0].content[1].image: provider 'ollama' (ollama protocol) cannot take an image " \
           "URL; save https://example.com/cat.png and give its path" in out
    assert "prompts[4].messages[0].content[1].image: image file gone.png not found (relative to the job file) " \
           "(data row 1)" in out


def test_a_mistyped_image_part_names_the_part(fake_providers: Path, isolated: Path) -> None:
    out = validate(isolated, {
        "targets": ["openai/gpt-4o-mini"],
        "prompts": [{"messages": [{"role": "user", "content": [{"text": "Describe"}, {"img": "cat.png"}]}]}],
    }, fake_providers)
    assert "prompts[0].messages[0].content[1].img: unknown key 'img'; did you mean 'image'?" in out


def test_response_schema_and_tool_choice_problems(fake_providers: Path, isolated: Path) -> None:
    out = validate(isolated, {
        "targets": ["openai/gpt-4o-mini"],
        "prompts": [{"text": "x", "response_schema": "nowhere.json"},
                    {"text": "y", "tool_choice": "lookup"}],
        "tools": [{"name": "search"}],
    }, fake_providers)
    assert "prompts[0].response_schema: schema file nowhere.json not found (relative to the job file)" in out
    assert "prompts[1].tool_choice: tool_choice 'lookup' is not a declared tool; use auto, required, none or " \
           "one of: search" in out


def test_example_jobs_validate(fake_providers: Path) -> None:
    for name in ("vision.yaml", "extract.yaml", "tools.yaml"):
        done = hanzo("validate", REPO / "jobs" / name, "--providers-dir", fake_providers)
        assert done.returncode == 0, name + done.stdout + done.stderr


def test_a_llama_cpp_python_server_gets_the_schema_in_its_own_dialect(fake: FakeServer, keys: dict[str, str],
                                                                      isolated: Path) -> None:
    """llama-cpp-python's server answers response_format json_schema with a 500 (seen with 0.3.36) and takes
    {type: json_object, schema} instead: json_schema_style says which a provider gets."""
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    providers = write_providers(isolated / "p", {
        "lmstudio": point_at(fake, "lmstudio", json_schema_style="llama-cpp-python"),
        "openai": point_at(fake, "openai")})
    job = write_job(isolated, {"targets": ["lmstudio/m", "openai/m"], "prompts": ["Name someone."],
                               "response_schema": schema, "output": "out.db"})
    hanzo(job, "--providers-dir", providers)
    sent = {r.flavor: r.json["response_format"] for r in fake.requests if r.chat}
    assert sent["lmstudio"] == {"type": "json_object", "schema": schema}
    assert sent["openai"]["type"] == "json_schema" and sent["openai"]["json_schema"]["schema"] == schema
