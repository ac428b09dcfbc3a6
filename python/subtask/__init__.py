"""subtask: one blocking ``task`` tool for LLM agents.

Hand work to a subagent and get the answer back; the call blocks until the answer is there
(releasing the GIL), with both the queue and the execution timeout enforced. A Python
binding over subtask's C ABI (``include/subtask.h``).

For scripts::

    import subtask
    print(subtask.task("explore", "Where are timeouts enforced?"))

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
from ._ffi import ABI_VERSION
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
    "close_default_runtime",
    "default_runtime",
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

    __version__ = _version("subtask")
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


def task(subagent_type: str, prompt: str, **optional: Any) -> str:
    """Runs a subagent of type ``subagent_type`` on ``prompt`` in the current directory and
    returns its final answer. Blocks until it is done.

    ``optional`` takes the other fields of :meth:`Runtime.task` (``description``,
    defaulting to the prompt's first words, ``model``, ``files``, ``timeout_seconds``...).
    Runs on :func:`default_runtime`.

    Raises :class:`ConfigError` when no model is configured, :class:`InvalidInput` for a
    refused call, :class:`Timeout` / :class:`Cancelled` / :class:`Error` when the run did
    not complete (its :class:`TaskResult` is the exception's ``result``).
    """
    description = optional.pop("description", None) or _description(prompt)
    result = default_runtime().task(description, prompt, subagent_type, **optional)
    return result.raise_for_status().answer


def _description(prompt: str) -> str:
    """The prompt's first words, as the ``task`` tool accepts a description."""
    description = " ".join(prompt.split()[:5])[:80]
    return description or "task"
