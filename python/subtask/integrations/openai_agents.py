"""The ``task`` tool for the OpenAI Agents SDK (``pip install "subtask-agents[openai-agents]"``).

::

    from agents import Agent, Runner
    from subtask.integrations.openai_agents import task_tool

    agent = Agent(name="lead", tools=[task_tool(rt)])
    result = await Runner.run(agent, "Find where deadlines are enforced")
"""

from __future__ import annotations

from typing import Any

from .._runtime import Runtime

try:
    from agents import FunctionTool, RunContextWrapper
except ImportError as error:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "subtask.integrations.openai_agents needs the OpenAI Agents SDK: "
        'pip install "subtask-agents[openai-agents]"'
    ) from error

__all__ = ["task_tool"]


def task_tool(runtime: Runtime, *, name: str = "task") -> FunctionTool:
    """``runtime``'s ``task`` tool as a ``FunctionTool``: the same description (written from
    the runtime's types and limits) and JSON Schema the model sees everywhere else.

    A call the ``task`` tool refuses (a bad field, an unknown type) returns the refusal as
    text, so the model can correct itself; runs that fail or time out are in the text too
    (status and error in each footer). Cancelling the agent run cancels the subagents.
    """
    definition = runtime.tool_definition("openai")["function"]

    async def invoke(context: RunContextWrapper[Any], arguments: str) -> str:
        return await _call(runtime, arguments)

    return FunctionTool(
        name=name,
        description=definition["description"],
        params_json_schema=definition["parameters"],
        on_invoke_tool=invoke,
        # The schema has optional fields and alternatives (`tasks`), which strict mode
        # (every property required, no `oneOf`) cannot express.
        strict_json_schema=False,
    )


async def _call(runtime: Runtime, arguments: str) -> str:
    from .._errors import InvalidInput

    try:
        output = await runtime.acall(arguments or "{}")
    except InvalidInput as refusal:
        return f"Invalid task call: {refusal}"
    return output.text
