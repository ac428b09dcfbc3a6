"""What a ``task`` call returns: :class:`TaskOutput` (the whole call) and one
:class:`TaskResult` per run. The model-facing text and footers come from subtask's Rust
core through the C ABI; nothing here rebuilds them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar

from ._errors import CANCELLED, OTHER, TIMEOUT, error_for_code

__all__ = ["Usage", "TaskResult", "TaskOutput", "output_from_native", "result_from_native"]

T = TypeVar("T")


def _built(cls: Type[T], fields: Dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` with every field in ``fields``, without
    going through ``__init__`` (a frozen dataclass sets each field with
    ``object.__setattr__``; results are read on every call, so this is the fast way)."""
    instance = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


#: Every status a run may end with.
STATUSES = (
    "completed",
    "max_turns",
    "max_output_tokens",
    "max_cost",
    "failed",
    "timed_out",
    "cancelled",
    "refused",
)


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one or more model calls."""

    input_tokens: int = 0
    """Input tokens not read from a cache."""
    output_tokens: int = 0
    """Output tokens (reasoning included)."""
    cache_read_tokens: int = 0
    """Input tokens read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache."""
    cost_usd: Optional[float] = None
    """Cost in US dollars; ``None`` when a price is unknown (never a guess)."""

    @property
    def total_input_tokens(self) -> int:
        """Every input token: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> "Usage":
        data = data or {}
        return _built(
            cls,
            {
                "input_tokens": int(data.get("input_tokens") or 0),
                "output_tokens": int(data.get("output_tokens") or 0),
                "cache_read_tokens": int(data.get("cache_read_tokens") or 0),
                "cache_write_tokens": int(data.get("cache_write_tokens") or 0),
                "cost_usd": data.get("cost_usd"),
            },
        )


@dataclass(frozen=True)
class TaskResult:
    """One run's result.

    A run that did not complete (``failed``, ``timed_out``, ``cancelled``, or stopped at a
    limit) is still a result, not an exception: ``answer`` holds the best answer so far and
    ``error`` says why. Check :attr:`ok`, or call :meth:`raise_for_status` to turn it into
    an exception.
    """

    answer: str
    """The full final answer (or the best answer so far)."""
    status: str
    """``completed``, ``max_turns``, ``max_output_tokens``, ``max_cost``, ``failed``,
    ``timed_out``, ``cancelled`` or ``refused``."""
    run_id: Optional[str] = None
    """The run id, to pass as ``resume`` (``None`` if it never started)."""
    error: Optional[str] = None
    """Why it did not complete."""
    turns: int = 0
    """Model calls made."""
    usage: Usage = field(default_factory=Usage)
    """Tokens and cost."""
    model: Optional[str] = None
    """The model that ran it."""
    duration_ms: int = 0
    """Wall time of the run, in milliseconds."""
    description: str = ""
    """The task's description."""
    subagent_type: str = ""
    """The subagent type."""
    type_source: Optional[str] = None
    """The file that defined the type (``project file .subtask/agents/x.md``…); ``None``
    for a built-in type or one registered in code."""
    tool_calls: Dict[str, int] = field(default_factory=dict)
    """Calls per tool."""
    worktree: Optional[Dict[str, str]] = None
    """For a type with ``isolation: worktree``: ``{"path", "branch"}`` of the worktree
    holding the run's committed changes; ``None`` when it changed nothing."""

    @property
    def ok(self) -> bool:
        """Whether the run completed its answer."""
        return self.status == "completed"

    def raise_for_status(self) -> "TaskResult":
        """Returns the result if it completed; else raises :class:`~subtask.Timeout`
        (``timed_out``), :class:`~subtask.Cancelled` (``cancelled``) or
        :class:`~subtask.Error` (code 11: ``failed``, ``refused`` or a limit), with this
        result as the exception's ``result``."""
        if self.ok:
            return self
        code = {"timed_out": TIMEOUT, "cancelled": CANCELLED}.get(self.status, OTHER)
        detail = f": {self.error}" if self.error else ""
        raise error_for_code(code, f"the task {self.status.replace('_', ' ')}{detail}", self)

    footer: str = ""
    """The footer line the model reads after the answer, as subtask wrote it:
    ``[run explore-k3m9x2ab · completed · 4 turns · 12,345 in / 678 out tokens · 8.2 s]``."""
    text: str = ""
    """The answer (or error) and the footer: this run alone as the model reads it."""

    def to_text(self) -> str:
        """The answer (or error) and the footer, as the model reads this run (written by
        subtask itself, not rebuilt here)."""
        return self.text

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TaskResult":
        return _built(
            cls,
            {
                "answer": data.get("answer") or "",
                "status": data.get("status") or "failed",
                "run_id": data.get("run_id"),
                "error": data.get("error"),
                "turns": int(data.get("turns") or 0),
                "usage": Usage.from_json(data.get("usage")),
                "model": data.get("model"),
                "duration_ms": int(data.get("duration_ms") or 0),
                "description": data.get("description") or "",
                "subagent_type": data.get("subagent_type") or "",
                "type_source": data.get("type_source"),
                "tool_calls": dict(data.get("tool_calls") or {}),
                "worktree": data.get("worktree"),
                "footer": data.get("footer") or "",
                "text": data.get("text") or "",
            },
        )


@dataclass(frozen=True)
class TaskOutput:
    """A whole ``task`` call: one result per run, in request order."""

    results: List[TaskResult]
    """One result per run, in request order (a task with a list of models gives one per
    model)."""
    is_error: bool
    """Whether any run did not complete: report the call to the model as a tool error."""
    usage: Usage
    """Tokens and cost of every run together (cost ``None`` when any was unknown)."""
    duration_ms: int
    """Wall time of the whole call, in milliseconds."""

    text: str = ""
    """The text the model reads: each run's full answer (or error) and its footer; several
    runs each under a heading, in request order. Written by subtask (``TaskOutput::to_text``
    in Rust), so it is the same text the Rust, C and MCP faces give."""

    def to_text(self) -> str:
        """The text the model reads (see :attr:`text`)."""
        return self.text

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TaskOutput":
        return _built(
            cls,
            {
                "results": [TaskResult.from_json(result) for result in data.get("results") or []],
                "is_error": bool(data.get("is_error")),
                "usage": Usage.from_json(data.get("usage")),
                "duration_ms": int(data.get("duration_ms") or 0),
                "text": data.get("text") or "",
            },
        )


# What the native layer writes (`output_json` in src/ffi.rs): a result's keys are exactly
# TaskResult's fields and its usage's Usage's, with their types (tests/test_json.py checks).
_RESULT_KEYS = frozenset(item.name for item in fields(TaskResult))
_USAGE_KEYS = frozenset(item.name for item in fields(Usage))


def result_from_native(data: Dict[str, Any]) -> TaskResult:
    """A result from a freshly parsed native output: the dict (owned by the caller, not
    kept elsewhere) becomes the instance's fields, only ``usage`` an object. Several times
    faster than :meth:`TaskResult.from_json`, which any other shape goes through."""
    if data.keys() != _RESULT_KEYS or data["usage"].keys() != _USAGE_KEYS:
        return TaskResult.from_json(data)
    data["usage"] = _built(Usage, data["usage"])
    return _built(TaskResult, data)


def output_from_native(data: Dict[str, Any]) -> TaskOutput:
    """:func:`result_from_native` for a whole call's output."""
    return _built(
        TaskOutput,
        {
            "results": [result_from_native(result) for result in data["results"]],
            "is_error": bool(data["is_error"]),
            "usage": Usage.from_json(data["usage"]),
            "duration_ms": int(data["duration_ms"]),
            "text": data["text"],
        },
    )
