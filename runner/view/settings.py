"""The Providers page: cloud and local providers, where each key comes from, setting, removing and
checking keys, local servers up or down with their loaded models.

A key goes one way: from the form to the key store (``runner.api.set_api_key``, which checks it
against the provider first, as ``hanzo-run keys set`` does). Nothing sent back holds more of it
than its last 4 characters (``KeyStatus.shown``); an error never repeats the key typed.

A form's outcome, a refused key included, is the page again (200) with a message saying what
happened; only requests the page never sends (an unknown provider, an empty key) answer 4xx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..api import KeyRejectedError, get_provider_statuses, remove_api_key, set_api_key, validate_all_keys
from ..errors import HanzoError
from ..keys.store import keys_path
from ..probes.keycheck import KeyCheck
from .pages import render

NAV = ("Providers", "/providers")
TABS = ("cloud", "local")


def notice() -> str:
    """Where keys are kept and where they go: shown above every key form."""
    return (f"Keys you save here are kept in {keys_path()}, readable by your user account only. A key is sent "
            "only to the host of the provider it was saved for, in that provider's auth header; this page never "
            "shows more of a key than its last 4 characters. A key in an environment variable wins over a saved "
            "one and is not changed here.")


async def providers_page(request: Request) -> Response:
    return await _page(request, request.query_params.get("tab", "cloud"),
                       done=_done_message(request.query_params.get("saved"), request.query_params.get("removed")))


async def set_key(request: Request) -> Response:
    provider_id = request.path_params["provider"]
    form = await form_of(request)
    tab = _tab(form.get("tab"))
    try:
        await in_thread(functools.partial(set_api_key, provider_id, form.get("key", ""),
                                          providers_dirs=dirs(request)))
    except KeyRejectedError as e:
        return await _page(request, tab, failed=str(e))
    except HanzoError as e:  # an unknown provider, a keyless one, an empty key
        return await _page(request, tab, status_code=400, failed=str(e).removeprefix("hanzo-run: "))
    return _back(tab, saved=provider_id)


async def remove_key(request: Request) -> Response:
    provider_id = request.path_params["provider"]
    form = await form_of(request)
    tab = _tab(form.get("tab"))
    if not await in_thread(remove_api_key, provider_id):
        return await _page(request, tab, status_code=400, failed=f"{provider_id}: no key in the store")
    return _back(tab, removed=provider_id)


async def validate_keys(request: Request) -> Response:
    form = await form_of(request)
    checks: list[KeyCheck] = await in_thread(validate_all_keys, dirs(request))
    failed = None if checks else "no provider has a key to check; set one below"
    return await _page(request, _tab(form.get("tab")), checks=checks, failed=failed)


routes = [
    Route("/providers", providers_page, methods=["GET"]),
    Route("/providers/validate", validate_keys, methods=["POST"]),
    Route("/providers/{provider}/key", set_key, methods=["POST"]),
    Route("/providers/{provider}/key/remove", remove_key, methods=["POST"]),
]


async def _page(request: Request, tab: str, *, status_code: int = 200, done: str | None = None,
                failed: str | None = None, checks: list[KeyCheck] | None = None) -> Response:
    tab = _tab(tab)
    statuses, problems = await in_thread(functools.partial(get_provider_statuses, dirs(request),
                                                           loaded_models=tab == "local"))
    return render(request, "providers.html", status_code=status_code, tab=tab, tabs=TABS,
                  statuses=[s for s in statuses if s.provider.kind == tab],
                  counts={t: sum(s.provider.kind == t for s in statuses) for t in TABS},
                  problems=[str(p) for p in problems], notice=notice(), done=done, failed=failed,
                  checks=checks or [])


def _tab(tab: str | None) -> str:
    return tab if tab in TABS else "cloud"


def _done_message(saved: str | None, removed: str | None) -> str | None:
    if saved:
        return f"{saved}: key checked against the provider and saved"
    if removed:
        return f"{removed}: key removed from the store"
    return None


def _back(tab: str, **done: str) -> Response:
    """After a change, the page again by GET (so reloading it does not post twice)."""
    return RedirectResponse(f"/providers?{urlencode({'tab': tab, **done})}", status_code=303)


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form (the guard has read and checked the body already; its size is bounded)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def dirs(request: Request) -> tuple[str, ...]:
    """The folders ``view --providers-dir`` named, read besides the usual ones."""
    providers_dirs: tuple[str, ...] = request.app.state.view.providers_dirs
    return providers_dirs


async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    """An API call that runs its own event loop (a key check), on a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(call, *args))
