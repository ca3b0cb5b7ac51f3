"""Running code that may never return (a job's python checks) without holding the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


async def in_daemon_thread(call: Callable[[], _T]) -> _T:
    """``call()`` in a daemon thread of its own, awaited without blocking the event loop.

    Cancelling the wait (Ctrl-C) abandons the thread. Being a daemon, it never keeps the process
    alive at exit, as an anyio worker thread stuck in user code would.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def deliver(settle: Callable[[Any], None], value: Any) -> None:
        def apply() -> None:
            if not done.done():  # cancelled meanwhile: no one waits for it any more
                settle(value)
        try:
            loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the loop has closed
            pass

    def work() -> None:
        try:
            result = call()
        except BaseException as e:  # noqa: BLE001 (handed to the waiting task, which raises it)
            deliver(done.set_exception, e)
        else:
            deliver(done.set_result, result)

    threading.Thread(target=work, name="hanzo-run checks", daemon=True).start()
    return await done
