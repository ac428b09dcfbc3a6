"""`task` inside other frameworks' own agent loops, offline: each framework's loop drives a
fake model of its own kind that calls `task`, runs it, and reads the result back."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, List, Optional

import pytest
from conftest import echo


def test_openai_agents_runner_calls_task(make_runtime: Any) -> None:
    agents = pytest.importorskip("agents")
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )
    from subtask.integrations.openai_agents import task_tool

    agents.set_tracing_disabled(True)
    rt = make_runtime(echo)
    seen_outputs: List[str] = []

    class ScriptedModel(Model):
        """First turn: call `task`; second: answer with what it returned."""

        async def get_response(
            self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
        ) -> ModelResponse:
            outputs = [
                item["output"]
                for item in (input if isinstance(input, list) else [])
                if isinstance(item, dict) and item.get("type") == "function_call_output"
            ]
            if not outputs:
                call = ResponseFunctionToolCall(
                    type="function_call",
                    call_id="call_1",
                    name="task",
                    arguments=json.dumps(
                        {
                            "description": "Find the timer",
                            "prompt": "where is the timer?",
                            "subagent_type": "explore",
                        }
                    ),
                )
                return ModelResponse(output=[call], usage=Usage(), response_id=None)
            seen_outputs.extend(str(output) for output in outputs)
            message = ResponseOutputMessage(
                id="msg_1",
                type="message",
                role="assistant",
                status="completed",
                content=[
                    ResponseOutputText(
                        type="output_text", text="lead: " + str(outputs[-1]), annotations=[]
                    )
                ],
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            raise NotImplementedError

    agent = agents.Agent(name="lead", model=ScriptedModel(), tools=[task_tool(rt)])
    result = asyncio.run(agents.Runner.run(agent, "delegate it"))
    (output,) = seen_outputs
    assert output.startswith("echo: where is the timer?\n\n[run explore-"), output
    assert result.final_output == "lead: " + output


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_langgraph_react_agent_calls_task(make_runtime: Any) -> None:
    pytest.importorskip("langchain_core")
    prebuilt = pytest.importorskip("langgraph.prebuilt")
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, ToolMessage
    from subtask.integrations.langchain import task_tool

    class FakeToolModel(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    rt = make_runtime(echo)
    tool = task_tool(rt)
    model = FakeToolModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {
                            "id": "call_1",
                            "name": "task",
                            "args": {
                                "description": "Find the timer",
                                "prompt": "where is the timer?",
                                "subagent_type": "explore",
                            },
                        }
                    ],
                ),
                AIMessage(content="done"),
            ]
        )
    )
    agent = prebuilt.create_react_agent(model, [tool])
    state = asyncio.run(agent.ainvoke({"messages": [("user", "delegate it")]}))
    (tool_message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert str(tool_message.content).startswith("echo: where is the timer?\n\n[run explore-")
    assert state["messages"][-1].content == "done"
    # The synchronous path, and a refusal the model can read and correct.
    assert tool.invoke(
        {"description": "Say hi", "prompt": "hi", "subagent_type": "explore"}
    ).startswith("echo: hi")
    refused: Optional[str] = tool.invoke(
        {"description": "Say hi", "prompt": "hi", "subagent_type": "no-such-type"}
    )
    assert refused is not None and refused.startswith("Invalid task call:")
