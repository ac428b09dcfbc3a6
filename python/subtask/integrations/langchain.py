"""The ``task`` tool for LangChain and LangGraph (``pip install "subtask-agents[langchain]"``).

::

    from subtask.integrations.langchain import task_tool

    tools = [task_tool(rt)]
    model_with_tools = chat_model.bind_tools(tools)
"""

from __future__ import annotations

import json
from typing import Any

from .._errors import InvalidInput
from .._runtime import Runtime

try:
    from langchain_core.tools import StructuredTool
except ImportError as error:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "subtask.integrations.langchain needs langchain-core: "
        'pip install "subtask-agents[langchain]"'
    ) from error

__all__ = ["task_tool"]


def task_tool(runtime: Runtime, *, name: str = "task") -> StructuredTool:
    """``runtime``'s ``task`` tool as a ``StructuredTool`` (sync and async): the description
    and JSON Schema the model sees everywhere else. ``ainvoke`` awaits
    :meth:`Runtime.acall` (cancelling the awaiting task cancels the subagents); ``invoke``
    blocks in :meth:`Runtime.call`. A refused call returns the refusal as text."""
    definition = runtime.tool_definition("openai")["function"]

    def run(**arguments: Any) -> str:
        try:
            return runtime.call(json.dumps(arguments)).text
        except InvalidInput as refusal:
            return f"Invalid task call: {refusal}"

    async def arun(**arguments: Any) -> str:
        try:
            return (await runtime.acall(json.dumps(arguments))).text
        except InvalidInput as refusal:
            return f"Invalid task call: {refusal}"

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=definition["description"],
        args_schema=definition["parameters"],
        infer_schema=False,
    )
