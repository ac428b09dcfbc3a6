"""The exception hierarchy: one class per stable error code of the C ABI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Type

if TYPE_CHECKING:
    from ._results import TaskResult

__all__ = [
    "Error",
    "InvalidInput",
    "ConfigError",
    "QueueFull",
    "Timeout",
    "Cancelled",
    "Shutdown",
    "Panic",
    "ProviderError",
    "ToolError",
    "error_for_code",
]

# The stable codes of `subtask_error_code` (SUBTASK_ERROR_* in include/subtask.h).
INVALID_INPUT = 1
CONFIG = 2
QUEUE_FULL = 3
TIMEOUT = 4
CANCELLED = 5
SHUTDOWN = 6
PANIC = 7
PROVIDER = 8
TOOL = 9
IO = 10
OTHER = 11
INTERNAL = 12


class Error(Exception):
    """Every error subtask raises.

    ``code`` is the stable code of the C ABI (1 invalid input, 2 configuration, 3 queue
    full, 4 timeout, 5 cancelled, 6 shutdown, 7 panic, 8 provider, 9 tool, 10 I/O,
    11 other, 12 internal). ``result`` is the :class:`TaskResult` behind the error when it
    comes from :meth:`TaskResult.raise_for_status` or :func:`subtask.task`, else ``None``.
    """

    code: int
    message: str
    result: Optional["TaskResult"]

    def __init__(
        self, message: str, code: int = OTHER, result: Optional["TaskResult"] = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.result = result


class InvalidInput(Error, ValueError):
    """A call was refused before anything ran: bad arguments, an unknown setting. The
    message names the field."""


class ConfigError(Error):
    """The runtime, a provider or a subagent type is configured wrongly (no model, a
    workspace that does not exist, a tool name taken twice)."""


class QueueFull(Error):
    """Too many tasks already wait for an execution slot. Retry later."""


class Timeout(Error):
    """A time limit fired (the task's execution, queue or wait timeout)."""


class Cancelled(Error):
    """The task was cancelled (``Runtime.cancel``, ``cancel_all`` or ``close``)."""


class Shutdown(Error):
    """The runtime has shut down and takes no more work."""


class Panic(Error):
    """subtask panicked: a bug, please report it with the message."""


class ProviderError(Error):
    """An LLM provider refused or failed a request, or could not be reached."""


class ToolError(Error):
    """A tool call failed."""


_BY_CODE: Dict[int, Type[Error]] = {
    INVALID_INPUT: InvalidInput,
    CONFIG: ConfigError,
    QUEUE_FULL: QueueFull,
    TIMEOUT: Timeout,
    CANCELLED: Cancelled,
    SHUTDOWN: Shutdown,
    PANIC: Panic,
    PROVIDER: ProviderError,
    TOOL: ToolError,
}


def error_for_code(code: int, message: str, result: Optional["TaskResult"] = None) -> Error:
    """The exception for an ABI error code (codes without a class of their own give
    :class:`Error`)."""
    return _BY_CODE.get(code, Error)(message, code, result)
