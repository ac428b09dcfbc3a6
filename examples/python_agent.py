"""A plain, synchronous Python agent loop that offers subtask's `task` tool to its model.

    pip install .                                  # in the subtask checkout (needs cargo)
    python examples/python_agent.py                # offline: scripted models stand in
    OPENAI_API_KEY=sk-... python examples/python_agent.py   # with `pip install openai`

The parent model sees one extra tool, `task`, in the OpenAI tools format. When it calls it,
`runtime.call(arguments)` blocks until the subagent's answer is back and returns the text
the model reads next. The subagent thinks through `model=`: here a Python callable speaking
Chat Completions JSON (the scripted stand-in, or the OpenAI SDK).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List

import subtask

Message = Dict[str, Any]
Chat = Callable[[List[Message], List[Dict[str, Any]]], Message]


def scripted_parent(messages: List[Message], tools: List[Dict[str, Any]]) -> Message:
    """Stands in for the parent model: one `task` call, then an answer from its result."""
    if messages[-1]["role"] != "tool":
        arguments = {
            "description": "List the Markdown files",
            "prompt": "Which Markdown files are in this project? List their paths.",
            "subagent_type": "explore",
        }
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "task", "arguments": json.dumps(arguments)},
                }
            ],
        }
    return {"role": "assistant", "content": "The subagent reports:\n\n" + messages[-1]["content"]}


def scripted_subagent(request: Dict[str, Any]) -> Dict[str, Any]:
    """Stands in for the subagent's model: Chat Completions in, Chat Completions out. It
    runs the real `glob` tool once, then answers with what it found."""
    results = [m["content"] for m in request["messages"] if m["role"] == "tool"]
    if not results:
        call = {
            "id": "g1",
            "type": "function",
            "function": {"name": "glob", "arguments": '{"pattern": "**/*.md"}'},
        }
        message: Dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
    else:
        message = {"role": "assistant", "content": "Markdown files:\n" + results[-1]}
    return {"choices": [{"message": message, "finish_reason": "stop"}]}


def models() -> "tuple[Chat, subtask.Runtime]":
    """The OpenAI API when a key and the `openai` package are there, else the scripts."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from openai import OpenAI  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            print("(OPENAI_API_KEY is set but `openai` is not installed: using the scripts)")
        else:
            client = OpenAI()

            def parent(messages: List[Message], tools: List[Dict[str, Any]]) -> Message:
                reply = client.chat.completions.create(
                    model="gpt-4.1-mini", messages=messages, tools=tools
                )
                message: Message = reply.choices[0].message.model_dump(exclude_none=True)
                return message

            runtime = subtask.Runtime(
                model=lambda request: client.chat.completions.create(**request),
                model_name="gpt-4.1-mini",
            )
            return parent, runtime
    return scripted_parent, subtask.Runtime(model=scripted_subagent, transcripts=False)


def main() -> None:
    chat, runtime = models()
    with runtime:
        tools = [runtime.tool_definition("openai")]  # next to your own tools
        messages: List[Message] = [
            {"role": "system", "content": "You are a helpful agent. Delegate searches."},
            {"role": "user", "content": "Which Markdown files does this project have?"},
        ]
        for _ in range(10):
            message = chat(messages, tools)
            messages.append(message)
            if not message.get("tool_calls"):
                print(message["content"])
                return
            for call in message["tool_calls"]:
                try:  # blocks until every subagent of the call has answered
                    text = runtime.call(call["function"]["arguments"]).to_text()
                except subtask.InvalidInput as error:  # a bad call: the model may fix it
                    text = f"Invalid task call: {error}"
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": text})


if __name__ == "__main__":
    main()
