"""A runtime driven by scripted Python models: round trips, tools, errors, life cycle."""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Dict, List

import pytest
import subtask
from conftest import call_tool, echo, last_user, reply, tool_results, tool_then_answer


def test_abi_version_matches() -> None:
    from subtask._native import lib

    assert lib.subtask_abi_version() == lib.SUBTASK_ABI_VERSION == subtask.ABI_VERSION


def test_single_task_round_trip(make_runtime: Any) -> None:
    requests: List[Dict[str, Any]] = []

    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        requests.append(request)
        return reply("The timer lives in timer.rs.", prompt_tokens=1234, completion_tokens=56)

    rt = make_runtime(model, model_name="scripted-1")
    result = rt.task("Where is the runtime's timer?", "explore", description="Find the timer")

    assert result.ok and result.status == "completed"
    assert result.answer == "The timer lives in timer.rs."
    assert result.error is None
    assert result.run_id and result.run_id.startswith("explore-")
    assert result.turns == 1
    assert result.usage.input_tokens == 1234 and result.usage.output_tokens == 56
    assert result.description == "Find the timer" and result.subagent_type == "explore"
    assert result.raise_for_status() is result
    assert re.fullmatch(
        rf"\[run {result.run_id} · completed · .+ · 1 turn · 1,234 in / 56 out tokens · "
        r"\d+\.\d s\]",
        result.footer,
    ), result.footer
    assert result.to_text().startswith("The timer lives in timer.rs.\n\n[run ")
    # The model callable got an OpenAI Chat Completions request.
    (request,) = requests
    assert request["model"] == "scripted-1"
    assert request["messages"][0]["role"] == "system"
    assert "Where is the runtime's timer?" in last_user(request)
    names = {tool["function"]["name"] for tool in request.get("tools", [])}
    assert "read" in names and "bash" not in names  # explore is read-only


def test_call_takes_the_models_json(make_runtime: Any) -> None:
    rt = make_runtime()
    output = rt.call('{"description": "Say hi", "prompt": "hi there", "subagent_type": "plan"}')
    assert not output.is_error
    assert [r.answer for r in output.results] == ["echo: hi there"]
    assert output.to_text().startswith("echo: hi there")


def test_task_parallel_keeps_request_order(make_runtime: Any) -> None:
    rt = make_runtime()
    prompts = [f"question number {n}" for n in range(4)]
    results = rt.task_parallel(
        [
            {"description": f"Question {n}", "prompt": p, "subagent_type": "explore"}
            for n, p in enumerate(prompts)
        ]
    )
    assert [r.answer for r in results] == [f"echo: {p}" for p in prompts]
    assert all(r.ok for r in results)
    assert len({r.run_id for r in results}) == 4


def test_python_tool_is_called_by_the_subagent(make_runtime: Any) -> None:
    calls: List[str] = []

    def word_count(text: str) -> int:
        """Counts the words of a text."""
        calls.append(text)
        return len(text.split())

    rt = make_runtime(tool_then_answer("word_count", {"text": "one two three"}), tools=[word_count])
    result = rt.task("How many words?", "general-purpose", description="Count words")
    assert result.ok, result.error
    assert result.answer == "tool said: 3"
    assert calls == ["one two three"]
    assert result.tool_calls == {"word_count": 1}


def test_rt_tool_decorator_before_first_call(make_runtime: Any) -> None:
    rt = make_runtime(tool_then_answer("shout", {"text": "hi"}))

    @rt.tool(read_only=True)
    def shout(text: str) -> str:
        """Upper-cases a text."""
        return text.upper()

    assert shout("x") == "X"  # still callable
    assert [tool.name for tool in rt.tools] == ["shout"]
    result = rt.task(
        "Shout hi", "plan", description="Shout it"
    )  # a read-only type: needs read_only
    assert result.answer == "tool said: HI", result

    with pytest.raises(subtask.Error, match="before the runtime's first call"):

        @rt.tool
        def late() -> None:
            """Too late."""


def test_read_only_types_get_only_read_only_host_tools(make_runtime: Any) -> None:
    def write_note(text: str) -> str:
        """Writes a note."""
        return "written"

    rt = make_runtime(tool_then_answer("write_note", {"text": "x"}), tools=[write_note])
    assert "no tool `write_note`" in rt.task("Write a note", "plan", description="Note it").answer
    assert (
        rt.task("Write a note", "general-purpose", description="Note it").answer
        == "tool said: written"
    )


def test_bad_arguments_are_refused_naming_the_field(make_runtime: Any) -> None:
    rt = make_runtime()
    with pytest.raises(subtask.InvalidInput, match="subagent_type") as caught:
        rt.task("Where?", "no-such-type", description="Find it")
    assert caught.value.code == 1
    assert isinstance(caught.value, ValueError)
    with pytest.raises(subtask.InvalidInput, match="description"):
        rt.call({"prompt": "Where?", "subagent_type": "explore"})
    with pytest.raises(subtask.InvalidInput, match="colour"):
        rt.task("Where?", "explore", description="Find it", colour="blue")
    with pytest.raises(subtask.InvalidInput, match="not valid JSON"):
        rt.call("{not json")
    with pytest.raises(subtask.InvalidInput, match="tasks"):
        one_task: Any = {"description": "x", "prompt": "y", "subagent_type": "explore"}
        rt.task_parallel(one_task)
    assert rt.stats()["submitted"] == 0  # nothing ran


def test_bad_settings_are_refused_at_construction(tmp_path: Any) -> None:
    with pytest.raises(subtask.InvalidInput, match="execution_treads"):
        subtask.Runtime(model=echo, execution_treads=4)
    with pytest.raises(subtask.InvalidInput, match="execution_threads"):
        subtask.Runtime(model=echo, execution_threads="four")  # type: ignore[arg-type]
    rt = subtask.Runtime(model=echo, execution_threads=0, transcripts=False, workspace=tmp_path)
    with pytest.raises(subtask.ConfigError, match="execution_threads"):
        rt.start()
    rt.close()


def test_use_after_close_raises(make_runtime: Any) -> None:
    rt = make_runtime()
    assert rt.task("hi", "explore", description="Say hi").ok
    rt.close()
    assert rt.closed
    for call in (
        lambda: rt.task("hi", "explore", description="Say hi"),
        lambda: rt.task_parallel([]),
        rt.stats,
        rt.cancel_all,
        lambda: rt.cancel("explore-12345678"),
        rt.tool_definition,
        rt.start,
    ):
        with pytest.raises(subtask.Error, match="closed") as caught:
            call()
        assert isinstance(caught.value, subtask.Shutdown) and caught.value.code == 6


def test_close_is_idempotent_and_works_unstarted(make_runtime: Any) -> None:
    rt = make_runtime()
    rt.close()
    rt.close()
    started = make_runtime().start()
    assert started.started
    started.close()
    started.close()
    with make_runtime() as in_block:
        assert in_block.task("hi", "explore", description="Say hi").ok
    assert in_block.closed


def test_dropped_runtime_is_freed(make_runtime: Any) -> None:
    import gc
    import weakref

    rt = subtask.Runtime(model=echo, transcripts=False)
    assert rt.task("hi", "explore", description="Say hi").ok
    ref = weakref.ref(rt)
    del rt
    gc.collect()
    assert ref() is None


def test_tool_exception_reaches_the_model_as_error_text(make_runtime: Any) -> None:
    seen: List[str] = []

    def broken(path: str) -> str:
        """Always fails."""
        raise ValueError(f"cannot open {path}")

    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        results = tool_results(request)
        if not results:
            return call_tool("broken", {"path": "x.txt"})
        seen.extend(results)
        return reply("recovered")

    rt = make_runtime(model, tools=[broken])
    result = rt.task("Use broken", "general-purpose", description="Try the tool")
    assert result.ok and result.answer == "recovered"
    assert any("ValueError: cannot open x.txt" in text for text in seen), seen


def test_model_exception_fails_the_task_with_its_message(make_runtime: Any) -> None:
    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        raise RuntimeError("rate limited by the fake")

    rt = make_runtime(model)
    result = rt.task("fail please", "explore", description="Fail")
    assert result.status == "failed" and not result.ok
    assert result.error and "RuntimeError: rate limited by the fake" in result.error
    with pytest.raises(subtask.Error, match="rate limited by the fake") as caught:
        result.raise_for_status()
    assert caught.value.result is result and caught.value.code == 11


def test_model_reply_that_is_not_chat_completions_fails_the_task(make_runtime: Any) -> None:
    rt = make_runtime(lambda request: "not json at all")
    result = rt.task("fail please", "explore", description="Fail")
    assert result.status == "failed" and "not JSON" in (result.error or "")
    rt2 = make_runtime(lambda request: {"error": {"message": "quota gone"}})
    assert "quota gone" in (rt2.task("fail", "explore", description="Fail").error or "")


def test_event_exception_is_logged_and_ignored(
    make_runtime: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kinds: List[str] = []
    lock = threading.Lock()

    def on_event(event: Dict[str, Any]) -> None:
        with lock:
            kinds.append(event["kind"])
        raise KeyError("observer bug")

    rt = make_runtime(on_event=on_event)
    with caplog.at_level(logging.ERROR, logger="subtask"):
        result = rt.task("hi", "explore", description="Say hi")
        rt.close()  # waits for the runtime's threads, so every event has been delivered
    assert result.ok
    assert "started" in kinds and "finished" in kinds
    assert "observer bug" in caplog.text


def test_events_carry_the_task_id(make_runtime: Any) -> None:
    events: List[Dict[str, Any]] = []
    lock = threading.Lock()

    def on_event(event: Dict[str, Any]) -> None:
        with lock:
            events.append(event)

    rt = make_runtime(on_event=on_event)
    result = rt.task("hi", "explore", description="Say hi")
    rt.close()
    finished = [e for e in events if e["kind"] == "finished"]
    assert finished and finished[-1]["task"] == result.run_id
    assert finished[-1]["status"] == "completed"


def test_tool_definition_formats(make_runtime: Any) -> None:
    rt = make_runtime(max_parallel=4)
    openai = rt.tool_definition("openai")
    assert openai["type"] == "function" and openai["function"]["name"] == "task"
    parameters = openai["function"]["parameters"]
    assert {"description", "prompt", "subagent_type", "tasks"} <= set(parameters["properties"])
    assert parameters["properties"]["tasks"]["maxItems"] == 4
    anthropic = rt.tool_definition("anthropic")
    assert anthropic["name"] == "task" and anthropic["input_schema"] == parameters
    mcp = rt.tool_definition("mcp")
    assert mcp["name"] == "task" and mcp["inputSchema"] == parameters
    assert rt.tool_definition() == openai
    with pytest.raises(subtask.InvalidInput, match="openai"):
        rt.tool_definition("gemini")


def test_stats_count_outcomes(make_runtime: Any) -> None:
    rt = make_runtime()
    assert rt.stats()["submitted"] == 0
    rt.task("hi", "explore", description="Say hi")
    rt.task_parallel([{"description": "Say yo", "prompt": "yo", "subagent_type": "plan"}] * 2)
    stats = rt.stats()
    assert stats["submitted"] == 3 and stats["completed"] == 3
    assert stats["running"] == 0 and stats["queued"] == 0 and stats["failed"] == 0
    assert set(stats) >= {"zombies", "live", "rejected", "cancelled", "timed_out"}


def test_model_may_return_json_text_or_objects(make_runtime: Any) -> None:
    class Dumpable:
        def model_dump(self) -> Dict[str, Any]:
            return reply("from an object")

    assert (
        make_runtime(lambda r: json.dumps(reply("from text")))
        .task("hi", "explore", description="Say hi")
        .answer
        == "from text"
    )
    assert (
        make_runtime(lambda r: Dumpable()).task("hi", "explore", description="Say hi").answer
        == "from an object"
    )
