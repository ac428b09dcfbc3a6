"""subtask: one blocking ``task`` tool for LLM agents.

Hand work to a subagent and get the answer back; the call blocks until the answer is there
(releasing the GIL), with both the queue and the execution timeout enforced. A Python
binding over subtask's C ABI (``include/subtask.h``).

For scripts::

    import subtask
    print(subtask.task("Where are timeouts enforced?", "explore"))

In async code::

    answer = await subtask.atask("Where are timeouts enforced?", "explore")

In a host::

    with subtask.Runtime(model="anthropic:claude-sonnet-4-5") as rt:
        definition = rt.tool_definition("openai")    # offer it to your model
        output = rt.call(tool_call_arguments)         # when the model calls `task`
        text = output.to_text()                       # what the model reads

See :class:`Runtime` for settings, Python models (``model=callable``), host tools
(:func:`tool`) and events.

Errors: every exception is a :class:`Error` with the ABI's stable ``code``; a run that
fails or times out is a :class:`TaskResult` with that status, not an exception (call
``raise_for_status()``), except in :func:`task`, which returns the answer or raises.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from ._callables import raw_json
from ._errors import (
    Cancelled,
    ConfigError,
    Error,
    InvalidInput,
    Panic,
    ProviderError,
    QueueFull,
    Shutdown,
    Timeout,
    ToolError,
)
from ._ffi import ABI_VERSION, current_call_cancelled
from ._results import TaskOutput, TaskResult, Usage
from ._runtime import EventCallable, ModelCallable, Runtime
from ._tools import Tool, tool

__all__ = [
    "ABI_VERSION",
    "Cancelled",
    "ConfigError",
    "Error",
    "EventCallable",
    "InvalidInput",
    "ModelCallable",
    "Panic",
    "ProviderError",
    "QueueFull",
    "Runtime",
    "Shutdown",
    "TaskOutput",
    "TaskResult",
    "Timeout",
    "Tool",
    "ToolError",
    "Usage",
    "atask",
    "cancelled",
    "close_default_runtime",
    "default_runtime",
    "raw_json",
    "task",
    "tool",
]

# Public classes print as subtask.X, not subtask._errors.X.
for _public in (
    Cancelled,
    ConfigError,
    Error,
    InvalidInput,
    Panic,
    ProviderError,
    QueueFull,
    Shutdown,
    Timeout,
    ToolError,
    TaskOutput,
    TaskResult,
    Usage,
    Runtime,
    Tool,
):
    _public.__module__ = __name__
del _public

try:
    from importlib.metadata import version as _version

    __version__ = _version("subtask-agents")
except Exception:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_default: Optional[Runtime] = None
_default_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The runtime :func:`task` uses, built the first time it is needed: default settings,
    the model named by the environment (``SUBTASK_MODEL``, or ``ANTHROPIC_API_KEY`` /
    ``OPENAI_API_KEY``), the current directory as workspace.

    Raises :class:`ConfigError` when no model is configured (naming the variable to set);
    a failed build is not remembered, so the next call tries again.
    """
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Runtime().start()
        return _default


def close_default_runtime() -> None:
    """Closes the default runtime, if built; the next :func:`task` builds a new one (from
    the environment as it is then)."""
    global _default
    with _default_lock:
        runtime, _default = _default, None
    if runtime is not None:
        runtime.close()


def task(prompt: str, subagent_type: str = "general-purpose", **optional: Any) -> str:
    """Runs a subagent of type ``subagent_type`` on ``prompt`` in the current directory and
    returns its final answer. Blocks until it is done. Same order as :meth:`Runtime.task`.

    ``optional`` takes the other fields of :meth:`Runtime.task` by keyword
    (``description``, defaulting to the prompt's first words, ``model``, ``files``,
    ``timeout_seconds``...). Runs on :func:`default_runtime`.

    Raises :class:`ConfigError` when no model is configured, :class:`InvalidInput` for a
    refused call, :class:`Timeout` / :class:`Cancelled` / :class:`Error` when the run did
    not complete (its :class:`TaskResult` is the exception's ``result``).
    """
    result = default_runtime().task(prompt, subagent_type, **optional)
    return result.raise_for_status().answer


async def atask(prompt: str, subagent_type: str = "general-purpose", **optional: Any) -> str:
    """:func:`task`, awaitable: never blocks the event loop, and cancelling the awaiting
    task cancels the run (see :meth:`Runtime.acall`)."""
    result = await default_runtime().atask(prompt, subagent_type, **optional)
    return result.raise_for_status().answer


def cancelled() -> bool:
    """Inside a host tool or model callable (sync or ``async def``): whether the task it
    works for was cancelled or timed out, so a long tool or model can stop early (what it
    returns then is discarded). False outside such a call. An ``async def`` one running on
    the caller's event loop is also cancelled (``asyncio.CancelledError``) when its task
    is."""
    return current_call_cancelled()
