"""``hanzo-run ask``: one prompt to one model, its answer on stdout (``runner.chat`` behind it)."""

from __future__ import annotations

import sys
from typing import Any

import click

from .exits import ExitCode
from .options import providers_dir_option


@click.command("ask")
@click.argument("target", metavar="PROVIDER[/MODEL]")
@click.argument("prompt")
@click.option("--system", help="A system message sent before the prompt.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A request parameter, as a job's params (temperature=0, max_tokens=200); repeatable. "
                   "VALUE is read as YAML: 0.2 is a number, [a, b] a list.")
@click.option("--stream", is_flag=True, help="Stream the answer and print it as it arrives.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the whole result as JSON: text, tokens, cost, latency, time to first token, attempts.")
@providers_dir_option
def ask(target: str, prompt: str, system: str | None, params: tuple[str, ...], stream: bool, as_json: bool,
        providers_dirs: tuple[str, ...]) -> None:
    """Ask PROVIDER's MODEL (default: the one chosen with ``use``, else the provider's default) PROMPT
    once, with the key, limits and retries a run uses; print the answer. PROMPT - reads stdin.
    Tokens, cost and latency go to stderr. Exit 1 when the request fails (its error code on stderr).

    \b
    Example:
        hanzo-run ask groq/llama-3.1-8b-instant "Capital of France?" --param temperature=0
    """
    import json

    from ..ask import chat
    from ..errors import ProviderError

    text = sys.stdin.read() if prompt == "-" else prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    printing = stream and not as_json

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        result = chat(target, messages, stream=stream, on_text=show if printing else None,
                      providers_dirs=providers_dirs, **_parsed(params))
    except ProviderError as e:
        if printing:
            sys.stdout.write("\n")
        if as_json:
            click.echo(json.dumps({"error": {"code": str(e.code), "message": e.message, "status": e.status,
                                             "provider": e.provider}}, indent=2, ensure_ascii=False))
        click.echo(f"hanzo-run: {e.provider or target}: {e}", err=True)
        raise ExitCode(1) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo("" if printing else result.text)
    cost = "unpriced" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    click.echo(f"{result.provider}/{result.model}: {_count(result.input_tokens)} in, "
               f"{_count(result.output_tokens)} out, {cost}, {result.latency_ms:.0f} ms"
               + (f" (first token {result.ttft_ms:.0f} ms)" if result.ttft_ms is not None else ""), err=True)


def _parsed(params: tuple[str, ...]) -> dict[str, Any]:
    """``--param KEY=VALUE`` options as a params mapping, each VALUE read as YAML."""
    import yaml

    from ..errors import UsageError

    parsed: dict[str, Any] = {}
    for param in params:
        name, sep, value = param.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"hanzo-run: --param {param!r}: write KEY=VALUE, e.g. --param temperature=0")
        try:
            parsed[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"hanzo-run: --param {param!r}: VALUE is not valid YAML") from None
    return parsed


def _count(tokens: int | None) -> str:
    return "?" if tokens is None else str(tokens)
