"""User callables (models, tools, event handlers) that may be ``async``, and models that
take and return raw JSON text.

Callbacks arrive on the runtime's own threads, never on an event loop. A coroutine a
callable returns is run to completion there:

- on the event loop of the asyncio call (``acall``/``atask``…) in progress, when there is
  one (so it may use that loop's clients and locks), with ``run_coroutine_threadsafe``;
- else on a fresh loop of its own (``asyncio.run``), as a synchronous call has no loop to
  lend.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any, Awaitable, Callable, Coroutine, Dict, Optional, TypeVar

from ._ffi import bind_cancel_check, unbind_cancel_check

__all__ = ["HostLoops", "raw_json", "is_raw_json", "resolve"]

F = TypeVar("F", bound=Callable[..., Any])

_RAW = "__subtask_raw_json__"

#: What callables return most often, never awaitable: `resolve` answers at once for these
#: (the ABC check of `inspect.isawaitable` is the slow part of a model reply's way back).
_PLAIN = frozenset({str, bytes, dict, list, type(None)})

#: How often a thread waiting for an async tool checks whether its task was cancelled.
_CANCEL_POLL = 0.05


def raw_json(model: F) -> F:
    """Marks a model callable as taking the Chat Completions request as JSON *text* and
    returning the response as JSON text (``str`` or ``bytes``), skipping the conversion to
    and from dicts: the fastest way to serve a model from Python (see ``python/bench.py``).

    >>> @raw_json
    ... def model(request_json: str) -> str:
    ...     return '{"choices": [{"message": {"role": "assistant", "content": "42"}}]}'
    """
    setattr(model, _RAW, True)
    return model


def is_raw_json(model: Callable[..., Any]) -> bool:
    """Whether :func:`raw_json` marked ``model``."""
    return bool(getattr(model, _RAW, False))


class HostLoops:
    """The event loops with an asyncio call in progress on one runtime, so that async
    callbacks run on the loop their caller lives on.

    Shared by a runtime and its handlers (which must not reference the runtime itself).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Invariant: a loop is a key exactly while it has asyncio calls in flight (value:
        # how many); insertion order keeps the most recent last.
        self._loops: Dict[asyncio.AbstractEventLoop, int] = {}

    def enter(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loops[loop] = self._loops.pop(loop, 0) + 1

    def leave(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            count = self._loops.pop(loop, 1) - 1
            if count > 0:
                self._loops[loop] = count

    def current(self) -> Optional[asyncio.AbstractEventLoop]:
        """The loop of the most recent asyncio call still in flight, if it runs."""
        with self._lock:
            loops = list(self._loops)
        for loop in reversed(loops):
            if loop.is_running() and not loop.is_closed():
                return loop
        return None


async def _checked(awaitable: Awaitable[Any], check: Optional[Callable[[], bool]]) -> Any:
    # Makes `subtask.cancelled()` answer for this call inside the coroutine as well.
    token = bind_cancel_check(check)
    try:
        return await awaitable
    finally:
        unbind_cancel_check(token)


def resolve(
    value: Any,
    loops: HostLoops,
    cancelled: Optional[Callable[[], bool]] = None,
) -> Any:
    """``value``, or, when a callable returned an awaitable, what it resolves to.

    With ``cancelled`` (the running tool's or model's own check, see
    ``current_cancel_check``), a coroutine running on a host loop is cancelled
    (``asyncio.CancelledError`` inside it) as soon as its task is.
    """
    if type(value) in _PLAIN or not inspect.isawaitable(value):
        return value
    coroutine: Coroutine[Any, Any, Any] = _checked(value, cancelled)
    loop = loops.current()
    if loop is None:
        return asyncio.run(coroutine)
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    if cancelled is None:
        return future.result()
    while True:
        try:
            return future.result(timeout=_CANCEL_POLL)
        except concurrent.futures.TimeoutError:
            if cancelled():
                # Raises CancelledError at once; the coroutine unwinds on its loop after
                # this call has returned (its check answers True from then on).
                future.cancel()
                return future.result()
