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
    assert result.capabilities.logging is not None


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
    assert messages[0].startswith("explore: started (run explore-"), messages
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


def test_invalid_arguments_are_an_error_result_the_model_can_read(tmp_path: Path) -> None:
    async def check(session: ClientSession) -> Any:
        missing = await session.call_tool("task", {"prompt": "no description"})
        wrong_type = await session.call_tool("task", dict(TASK, subagent_type="wizard"))
        with pytest.raises(MCPError) as unknown_tool:
            await session.call_tool("nope", {})
        return missing, wrong_type, unknown_tool.value

    missing, wrong_type, unknown_tool = _serve(tmp_path, [{"text": "unused"}], check)
    assert missing.is_error and "`description` is required" in _text(missing)
    assert wrong_type.is_error and "explore" in _text(wrong_type), _text(wrong_type)
    assert wrong_type.structured_content["error"]
    assert unknown_tool.code == -32602


# ---------------------------------------------------------------------------------------------
# mcp.Client: 2026-07-28 (server/discover, per-request _meta, MRTR) and the handshake
# ---------------------------------------------------------------------------------------------

from mcp_types import ListRootsResult, Root  # noqa: E402

from mcp import Client  # noqa: E402


def _params(
    tmp_path: Path, turns: List[Dict[str, Any]], cwd: str, *extra: str
) -> StdioServerParameters:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(turns))
    return StdioServerParameters(
        command=str(BINARY),
        args=["mcp", *extra],
        env={
            "SUBTASK_MODEL": f"scripted:{script}",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
            "HOME": str(tmp_path / "home"),
            # Transcripts go to the per-user state directory: this test's own.
            "XDG_STATE_HOME": str(tmp_path / "state"),
        },
        cwd=cwd,
    )


def _client_run(
    params: StdioServerParameters, test: Callable[[Client], Awaitable[Any]], **options: Any
) -> Any:
    async def main() -> Any:
        with anyio.fail_after(PATIENCE):
            async with Client(params, **options) as client:
                return await test(client)

    return anyio.run(main)


WRITE = {
    "description": "Write a marker",
    "prompt": "Write the marker",
    "subagent_type": "general-purpose",
}
WRITE_TURNS = [
    {"tool_calls": [{"name": "write", "arguments": {"path": "made-here.txt", "content": "x"}}]},
    {"text": "Written."},
]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_started_in_slash_the_run_works_in_the_clients_root(tmp_path: Path, mode: str) -> None:
    project = tmp_path / "project"
    project.mkdir()

    async def roots(_context: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=project.as_uri(), name="project")])

    async def check(client: Client) -> Tuple[str, Any]:
        return client.session.protocol_version, await client.call_tool("task", WRITE)

    version, result = _client_run(
        _params(tmp_path, WRITE_TURNS, "/"), check, mode=mode, list_roots_callback=roots
    )
    assert version == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert not result.is_error, _text(result)
    assert (project / "made-here.txt").is_file()
    assert not Path("/made-here.txt").exists()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_started_in_slash_without_roots_every_call_is_refused_clearly(
    tmp_path: Path, mode: str
) -> None:
    async def check(client: Client) -> Any:
        return await client.call_tool("task", WRITE)

    result = _client_run(_params(tmp_path, WRITE_TURNS, "/"), check, mode=mode)
    assert result.is_error
    assert '"--cwd"' in _text(result), _text(result)
    assert "started in /" in _text(result), _text(result)


def test_cwd_names_the_workspace_whatever_the_roots(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()

    async def check(client: Client) -> Any:
        return await client.call_tool("task", WRITE)

    result = _client_run(_params(tmp_path, WRITE_TURNS, "/", "--cwd", str(project)), check)
    assert not result.is_error, _text(result)
    assert (project / "made-here.txt").is_file()


def test_a_silent_run_hears_progress_at_the_configured_interval(tmp_path: Path) -> None:
    seen: List[Tuple[float, Optional[str]]] = []

    async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
        seen.append((time.monotonic(), message))

    async def check(client: Client) -> Any:
        return await client.call_tool("task", TASK, progress_callback=progress)

    turns = [{"text": "Eventually.", "delay_ms": 1500}]
    result = _client_run(
        _params(tmp_path, turns, str(tmp_path), "--progress-interval", "0.2"), check
    )
    assert not result.is_error, _text(result)
    alive = [at for at, message in seen if message and message.startswith("still working: explore")]
    # 1.5 s of silence at 0.2 s: about seven keep-alives; at least four, whatever the load.
    assert len(alive) >= 4, seen
    gaps = [later - earlier for earlier, later in zip(alive, alive[1:])]
    assert min(gaps) >= 0.15, gaps


def test_structured_content_matches_the_output_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")

    async def check(client: Client) -> Tuple[Any, Any, Any]:
        listed = await client.list_tools()
        good = await client.call_tool("task", TASK)
        bad = await client.call_tool("task", {"prompt": "no description"})
        return listed.tools[0], good, bad

    tool, good, bad = _client_run(_params(tmp_path, [{"text": "Found."}], str(tmp_path)), check)
    assert tool.annotations.read_only_hint is False
    assert tool.annotations.open_world_hint is True
    assert tool.annotations.idempotent_hint is False
    for result in (good, bad):
        jsonschema.validate(result.structured_content, tool.output_schema)
    assert good.structured_content["results"][0]["run_id"].startswith("explore-")
    assert good.structured_content["usage"]["output_tokens"] > 0


def test_a_long_parallel_answer_is_cut_to_the_budget(tmp_path: Path) -> None:
    long = "word " * 4000

    async def check(client: Client) -> Any:
        return await client.call_tool(
            "task", {"tasks": [dict(TASK, prompt=f"part {n}") for n in range(3)]}
        )

    params = _params(tmp_path, [{"text": long}], str(tmp_path), "--max-output-chars", "6000")
    result = _client_run(params, check)
    text = _text(result)
    assert len(text) <= 6000, len(text)
    runs = result.structured_content["results"]
    assert len(runs) == 3
    for run in runs:
        assert f'resume: "{run["run_id"]}"' in text
        assert "of 20000 characters shown" in run["answer"]


# ---------------------------------------------------------------------------------------------
# The io.modelcontextprotocol/tasks extension, driven by the SDK's client-extension hooks
# ---------------------------------------------------------------------------------------------

from typing import Literal  # noqa: E402

import mcp_types  # noqa: E402
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

TASKS = "io.modelcontextprotocol/tasks"


class TaskRequest(mcp_types.Request[Dict[str, Any], str]):
    """`tasks/get` or `tasks/cancel` (the SDK has no types for the extension's methods)."""


class CreateTaskResult(mcp_types.Result):
    """SEP-2663's `CreateTaskResult`: the handle a task-augmented `tools/call` returns."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    poll_interval_ms: Optional[int] = None
    ttl_ms: Optional[int] = None


class PollingTasks(ClientExtension):
    """Resolves a task handle the way a host does: polls `tasks/get` until the task ends and
    hands back its `CallToolResult`; with `cancel_after_polls`, sends `tasks/cancel` first."""

    identifier = TASKS

    def __init__(self, cancel_after_polls: Optional[int] = None) -> None:
        self.cancel_after_polls = cancel_after_polls
        self.handles: List[CreateTaskResult] = []
        self.statuses: List[str] = []

    def claims(self) -> Any:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def _send(self, ctx: ClaimContext, method: str, task_id: str) -> Dict[str, Any]:
        request = TaskRequest(method=method, params={"taskId": task_id})
        return await ctx.session.send_request(request, TypeAdapter(Dict[str, Any]))

    async def resolve(
        self, handle: CreateTaskResult, ctx: ClaimContext
    ) -> mcp_types.CallToolResult:
        self.handles.append(handle)
        polls = 0
        while True:
            task = await self._send(ctx, "tasks/get", handle.task_id)
            self.statuses.append(task["status"])
            if task["status"] == "completed":
                return mcp_types.CallToolResult.model_validate(task["result"])
            if task["status"] in ("failed", "cancelled"):
                text = f"task {task['status']}: {task.get('statusMessage')}"
                return mcp_types.CallToolResult(
                    content=[mcp_types.TextContent(type="text", text=text)], is_error=True
                )
            polls += 1
            if self.cancel_after_polls is not None and polls == self.cancel_after_polls:
                await self._send(ctx, "tasks/cancel", handle.task_id)
            # The server's hint, shortened: the test's runs are short.
            await anyio.sleep(min(handle.poll_interval_ms or 1000, 50) / 1000)


def test_a_task_augmented_call_is_polled_to_completion(tmp_path: Path) -> None:
    tasks = PollingTasks()

    async def check(client: Client) -> Any:
        return await client.call_tool("task", TASK)

    turns = [
        {"tool_calls": [{"name": "ls", "arguments": {"path": "."}}]},
        {"text": "Polled answer.", "delay_ms": 300},
    ]
    result = _client_run(_params(tmp_path, turns, str(tmp_path)), check, extensions=[tasks])
    assert len(tasks.handles) == 1, "the server answered with a task handle"
    assert len(tasks.handles[0].task_id) == 32
    assert tasks.statuses[0] == "working" and tasks.statuses[-1] == "completed", tasks.statuses
    assert not result.is_error, _text(result)
    assert _text(result).startswith("Polled answer.")
    assert result.structured_content["results"][0]["tool_calls"] == {"ls": 1}


def test_tasks_cancel_stops_the_runs(tmp_path: Path) -> None:
    tasks = PollingTasks(cancel_after_polls=2)
    transcripts = tmp_path / "state" / "subtask" / "transcripts"

    async def check(client: Client) -> Tuple[Any, str]:
        result = await client.call_tool("task", TASK)
        # The run ends as cancelled (its transcript's last line says so) while the server
        # still serves: tasks/cancel, not the end of the session, stopped it.
        while True:
            files = list(transcripts.rglob("*.jsonl"))
            last = files[0].read_text().strip().splitlines()[-1] if files else ""
            if "stop_reason" in last:
                return result, last
            await anyio.sleep(0.05)

    # The model would answer after 20 s: only a cancellation ends the run sooner.
    turns = [{"text": "too late", "delay_ms": 20000}]
    started = time.monotonic()
    result, last = _client_run(_params(tmp_path, turns, str(tmp_path)), check, extensions=[tasks])
    assert result.is_error and "task cancelled" in _text(result), _text(result)
    assert "cancelled" in last, last
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------------------------------------
# --keep-abandoned-runs: for hosts that cancel a call after a fixed time
# ---------------------------------------------------------------------------------------------


def test_a_call_cut_off_by_the_client_keeps_its_run_for_resume(tmp_path: Path) -> None:
    seen: List[str] = []

    async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
        seen.append(message or "")

    async def check(client: Client) -> Any:
        # The host gives up after 0.5 s (Claude Desktop: about 60 s) and cancels the call.
        with pytest.raises(MCPError):
            await client.call_tool(
                "task", TASK, read_timeout_seconds=0.5, progress_callback=progress
            )
        started = next(message for message in seen if "started (run " in message)
        run = started.split("(run ")[1].rstrip(")")
        return run, await client.call_tool("task", dict(TASK, prompt="Go on", resume=run))

    turns = [{"text": "Kept answer.", "delay_ms": 2000}]
    params = _params(tmp_path, turns, str(tmp_path), "--keep-abandoned-runs")
    run, result = _client_run(params, check)
    assert not result.is_error, _text(result)
    assert "Kept answer." in _text(result)
    assert "was still running when its call was cut off" in _text(result)
    assert result.structured_content["results"][0]["run_id"] == run
    # The run was not cancelled: its transcript ends completed.
    (path,) = (tmp_path / "state" / "subtask" / "transcripts").rglob(f"{run}.jsonl")
    transcript = path.read_text()
    assert "completed" in transcript.strip().splitlines()[-1]
