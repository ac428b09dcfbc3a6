"""The MCP server (`subtask mcp`) as the official MCP Python SDK sees it.

The server is the command-line binary, built by `cargo build` (or `cargo test`) into
`$CARGO_TARGET_DIR/debug/subtask` (default `target/debug/subtask`); its subagents think with
a scripted model (`SUBTASK_MODEL=scripted:<file>`), so nothing here needs a network or a key.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import pytest

anyio = pytest.importorskip("anyio", reason="the MCP SDK is not installed: pip install mcp")
mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed: pip install mcp")

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "subtask"


BINARY = _binary()

pytestmark = pytest.mark.skipif(
    not BINARY.is_file(),
    reason=f"the subtask binary is not built at {BINARY}: run `cargo build --bin subtask` first",
)

#: How long any one test may take before it fails rather than hangs.
PATIENCE = 30

TASK = {
    "description": "Find the timer",
    "prompt": "Where is the timer?",
    "subagent_type": "explore",
}


def _serve(
    tmp_path: Path,
    turns: List[Dict[str, Any]],
    session_test: Callable[[ClientSession], Awaitable[Any]],
) -> Any:
    """Starts `subtask mcp` in `tmp_path` with a model playing `turns`, initializes a
    session, and runs `session_test` on it."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps(turns))
    params = StdioServerParameters(
        command=str(BINARY),
        args=["mcp"],
        env={
            "SUBTASK_MODEL": f"scripted:{script}",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
            # Transcripts go to the per-user state directory: this test's own.
            "XDG_STATE_HOME": str(tmp_path / "state"),
        },
        cwd=str(tmp_path),
    )

    async def main() -> Any:
        with anyio.fail_after(PATIENCE):
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await session_test(session)

    return anyio.run(main)


def _text(result: Any) -> str:
    assert result.content and result.content[0].type == "text", result
    return result.content[0].text


def test_initialize_reports_the_server_and_its_version(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "unused"}]))
    params = StdioServerParameters(
        command=str(BINARY),
        args=["mcp"],
        env={"SUBTASK_MODEL": f"scripted:{script}"},
        cwd=str(tmp_path),
    )

    async def main() -> Any:
        with anyio.fail_after(PATIENCE):
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    return await session.initialize()

    result = anyio.run(main)
    # The SDK offers its latest version, which the server supports and so echoes.
    assert result.protocol_version == "2025-11-25"
    assert result.server_info.name == "subtask"
    assert result.capabilities.tools is not None
    assert "`task`" in (result.instructions or "")


def test_list_tools_offers_the_task_tool_with_its_schema(tmp_path: Path) -> None:
    async def check(session: ClientSession) -> Any:
        return await session.list_tools()

    listed = _serve(tmp_path, [{"text": "unused"}], check)
    assert [tool.name for tool in listed.tools] == ["task"]
    tool = listed.tools[0]
    schema = tool.input_schema
    assert schema["type"] == "object"
    for field in ("description", "prompt", "subagent_type", "tasks", "model", "resume"):
        assert field in schema["properties"], field
    assert "explore" in schema["properties"]["subagent_type"]["enum"]
    assert "subagent" in (tool.description or "")


def test_call_tool_reports_increasing_progress(tmp_path: Path) -> None:
    seen: List[Tuple[float, Optional[float], Optional[str]]] = []

    async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
        seen.append((value, total, message))

    async def check(session: ClientSession) -> Any:
        return await session.call_tool("task", TASK, progress_callback=progress)

    turns = [
        {"tool_calls": [{"name": "ls", "arguments": {"path": "."}}]},
        {"text": "The timer lives in timer.rs.", "delay_ms": 300},
    ]
    result = _serve(tmp_path, turns, check)
    assert not result.is_error, _text(result)
    assert _text(result).startswith("The timer lives in timer.rs.")
    structured = result.structured_content
    assert structured["results"][0]["status"] == "completed"
    assert structured["results"][0]["tool_calls"] == {"ls": 1}
    values = [value for value, _, _ in seen]
    assert len(values) >= 3, seen
    assert values == sorted(set(values)), f"not strictly increasing: {values}"
    messages = [message for _, _, message in seen]
    assert messages[0] == "explore: started", messages
    assert any(m and m.startswith("explore: ls '.'") for m in messages), messages


def test_two_calls_run_at_once(tmp_path: Path) -> None:
    async def check(session: ClientSession) -> Tuple[List[Any], float]:
        results: List[Any] = []

        async def one(n: int) -> None:
            results.append(await session.call_tool("task", dict(TASK, prompt=f"question {n}")))

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(one, 1)
            group.start_soon(one, 2)
        return results, time.monotonic() - started

    # Every call plays the one turn: an answer after 1.5 s.
    results, took = _serve(tmp_path, [{"text": "answered", "delay_ms": 1500}], check)
    assert len(results) == 2
    for result in results:
        assert not result.is_error, _text(result)
        assert _text(result).startswith("answered")
    assert took < 2.9, f"two 1.5 s calls took {took:.1f} s: they ran one after the other"


def test_a_timed_out_call_is_cancelled_and_the_server_goes_on(tmp_path: Path) -> None:
    async def check(session: ClientSession) -> Tuple[MCPError, Any, float]:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("task", TASK, read_timeout_seconds=0.5)
        started = time.monotonic()
        after = await session.call_tool("task", dict(TASK, prompt="again"))
        return raised.value, after, time.monotonic() - started

    # The first call's turn would take 5 s; the client gives up after 0.5 s and sends
    # notifications/cancelled. The next call plays the quick turn.
    turns = [{"text": "too late", "delay_ms": 5000}, {"text": "quick answer"}]
    started = time.monotonic()
    error, after, took = _serve(tmp_path, turns, check)
    assert "timed out" in error.message, error
    assert not after.is_error, _text(after)
    assert _text(after).startswith("quick answer")
    assert took < 3, f"the next call took {took:.1f} s"
    # The cancelled run did not hold the session open until its 5 s turn ended.
    assert time.monotonic() - started < 4.5
    transcripts = list((tmp_path / "state" / "subtask" / "transcripts").rglob("*.jsonl"))
    assert len(transcripts) == 2, transcripts


def test_a_failed_run_is_an_error_result(tmp_path: Path) -> None:
    async def check(session: ClientSession) -> Any:
        return await session.call_tool("task", TASK)

    result = _serve(tmp_path, [{"error": "the model is down"}], check)
    assert result.is_error
    assert "the model is down" in _text(result)
    assert result.structured_content["results"][0]["status"] == "failed"


def test_a_refused_call_is_an_error(tmp_path: Path) -> None:
    async def check(session: ClientSession) -> Any:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("task", {"prompt": "no description"})
        return raised.value

    error = _serve(tmp_path, [{"text": "unused"}], check)
    assert error.code == -32602
    assert "`description` is required" in error.message
