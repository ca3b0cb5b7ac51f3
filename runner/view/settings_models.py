"""The Models page: a provider's models as its own API lists them (context, price, capabilities),
a refresh that asks the provider again, and choosing the default model as ``hanzo-run use`` does.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..api import fetch_models, get_all_providers, get_selected_model, get_selected_provider, use
from ..config.providers import ModelInfo, Pricing, Provider
from ..engine.costing import PriceBook
from ..errors import HanzoError
from .pages import render
from .settings import dirs, form_of, in_thread

NAV = ("Models", "/models")
BADGES = ("vision", "tools", "json", "reasoning")  # the capabilities worth a badge; every model streams


async def models_page(request: Request) -> Response:
    return await _page(request, request.query_params.get("provider"), used=request.query_params.get("used"))


async def refresh(request: Request) -> Response:
    provider_id = (await form_of(request)).get("provider", "")
    try:
        await in_thread(functools.partial(fetch_models, provider_id, refresh=True, providers_dirs=dirs(request)))
    except HanzoError as e:
        return await _page(request, provider_id, failed=str(e).removeprefix("hanzo-run: "))
    return _back(provider_id)


async def choose(request: Request) -> Response:
    form = await form_of(request)
    provider_id, model = form.get("provider", ""), form.get("model", "")
    try:
        await in_thread(functools.partial(use, provider_id, model or None, dirs(request)))
    except HanzoError as e:
        return await _page(request, provider_id, status_code=400, failed=str(e).removeprefix("hanzo-run: "))
    return _back(provider_id, used=model)


routes = [
    Route("/models", models_page, methods=["GET"]),
    Route("/models/refresh", refresh, methods=["POST"]),
    Route("/models/use", choose, methods=["POST"]),
]


async def _page(request: Request, provider_id: str | None, *, status_code: int = 200, used: str | None = None,
                failed: str | None = None) -> Response:
    providers = [p for p in (await in_thread(get_all_providers, dirs(request)))[0]]
    ids = [p.id for p in providers]
    default_provider = await in_thread(get_selected_provider)
    provider_id = next((p for p in (provider_id, default_provider) if p in ids), ids[0] if ids else None)
    models: list[ModelInfo] = []
    prices: dict[str, Pricing | None] = {}
    selected = None
    if provider_id is not None:
        selected = await in_thread(get_selected_model, provider_id, dirs(request))
        if failed is None:
            try:
                models = await in_thread(functools.partial(fetch_models, provider_id, providers_dirs=dirs(request)))
            except HanzoError as e:
                failed = str(e).removeprefix("hanzo-run: ")
        prices = await in_thread(functools.partial(_prices, next(p for p in providers if p.id == provider_id), models))
    return render(request, "models.html", status_code=status_code, providers=providers, provider_id=provider_id,
                  default_provider=default_provider, selected=selected, models=models, prices=prices, badges=BADGES,
                  done=f"{provider_id}: default model is now {used}" if used else None, failed=failed)


def _prices(provider: Provider, models: list[ModelInfo]) -> dict[str, Pricing | None]:
    """Each model's price as runs and `hanzo-run models` get it: the provider file, else genai-prices,
    else the provider's listing."""
    book = PriceBook()
    return {m.id: book.get(provider, m.id) for m in models}


def _back(provider_id: str, **done: str) -> Response:
    return RedirectResponse(f"/models?{urlencode({'provider': provider_id, **done})}", status_code=303)
