"""Scripted Chat Completions models (no network) and runtime fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import subtask

Request = Dict[str, Any]


def reply(text: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> Dict[str, Any]:
    """A Chat Completions response with a final answer."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "scripted",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def call_tool(name: str, arguments: Dict[str, Any], call_id: str = "call_1") -> Dict[str, Any]:
    """A Chat Completions response that calls one tool."""
    return {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def last_user(request: Request) -> str:
    """The text of the request's last user message."""
    for message in reversed(request["messages"]):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content)
            return str(content)
    return ""


def tool_results(request: Request) -> List[str]:
    """The contents of the request's tool messages."""
    return [str(m["content"]) for m in request["messages"] if m["role"] == "tool"]


def echo(request: Request) -> Dict[str, Any]:
    """Answers with the prompt it was given."""
    return reply("echo: " + last_user(request))


def tool_then_answer(name: str, arguments: Dict[str, Any]) -> Callable[[Request], Dict[str, Any]]:
    """Calls `name` once, then answers with what the tool returned."""

    def model(request: Request) -> Dict[str, Any]:
        results = tool_results(request)
        if not results:
            return call_tool(name, arguments)
        return reply("tool said: " + results[-1])

    return model


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., subtask.Runtime]]:
    """Builds runtimes in a temporary workspace without transcripts; closes them after."""
    made: List[subtask.Runtime] = []

    def make(model: Optional[Any] = echo, **settings: Any) -> subtask.Runtime:
        settings.setdefault("workspace", tmp_path)
        settings.setdefault("transcripts", False)
        settings.setdefault("shutdown_grace", 2)
        runtime = subtask.Runtime(model=model, **settings)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()
