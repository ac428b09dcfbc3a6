"""asyncio: awaits never block the loop, run at once, and cancelling them cancels the runs.

No sleeps as synchronisation: callbacks wait on events and barriers the test controls, and
every wait has a generous bound so a failure is a failed assertion, not a hang.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List

import pytest
import subtask
from conftest import Request, echo, last_user, reply, tool_then_answer

BOUND = 10.0  # seconds; only reached when the code under test is broken


def test_eight_awaits_run_at_once_and_the_loop_keeps_ticking(make_runtime: Any) -> None:
    # Each model call waits at a barrier of eight: no call can finish unless all eight
    # runs are in flight together, and each also waits for the loop's ticker to tick, so
    # a blocked event loop fails the test (the barrier times out).
    barrier = threading.Barrier(8, timeout=BOUND)
    ticked = threading.Event()

    def model(request: Request) -> Dict[str, Any]:
        assert ticked.wait(BOUND), "the event loop stopped ticking"
        barrier.wait()
        return reply("done: " + last_user(request))

    rt = make_runtime(model, execution_threads=8)

    async def main() -> List[subtask.TaskResult]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1
                if ticks >= 3:
                    ticked.set()

        ticking = asyncio.ensure_future(ticker())
        try:
            results = await asyncio.gather(
                *(rt.atask(f"question {n}", "explore") for n in range(8))
            )
        finally:
            ticking.cancel()
        assert ticks >= 3
        return list(results)

    results = asyncio.run(main())
    assert [result.answer for result in results] == [f"done: question {n}" for n in range(8)]
    assert all(result.ok for result in results)


def _blocking_tool(entered: threading.Event, saw_cancel: threading.Event) -> subtask.Tool[str]:
    @subtask.tool
    def wait_here() -> str:
        """Works until its task is cancelled."""
        entered.set()
        stop = threading.Event()
        for _ in range(int(BOUND / 0.01)):
            if subtask.cancelled():
                saw_cancel.set()
                return "stopped"
            stop.wait(0.01)
        return "never cancelled"

    return wait_here


def test_cancelling_the_await_cancels_the_run_and_frees_the_slot(make_runtime: Any) -> None:
    entered, saw_cancel = threading.Event(), threading.Event()
    rt = make_runtime(
        tool_then_answer("wait_here", {}),
        tools=[_blocking_tool(entered, saw_cancel)],
        execution_threads=1,
    )

    async def main() -> None:
        running = asyncio.ensure_future(rt.atask("wait please", "general-purpose"))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, entered.wait, BOUND), "the tool never ran"
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # The host tool saw its task cancelled and stopped.
        assert await loop.run_in_executor(None, saw_cancel.wait, BOUND)

    asyncio.run(main())
    assert rt.stats()["cancelled"] == 1
    # The only execution slot is back: a new run completes (on the default echo model's
    # path the tool is not called again, since the model answers from the tool result).
    rt2_result = rt.call(
        {"description": "Again", "prompt": "again", "subagent_type": "explore"}
    ).results[0]
    assert rt2_result.status == "completed", rt2_result


def test_wait_for_timeout_cancels_the_run(make_runtime: Any) -> None:
    entered, saw_cancel = threading.Event(), threading.Event()
    rt = make_runtime(
        tool_then_answer("wait_here", {}), tools=[_blocking_tool(entered, saw_cancel)]
    )

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(rt.atask("wait please", "general-purpose"), 0.2)

    asyncio.run(main())
    assert saw_cancel.wait(BOUND), "the run went on after the await timed out"
    assert rt.stats()["cancelled"] == 1


def test_the_runtime_timeout_under_a_running_loop(make_runtime: Any) -> None:
    release = threading.Event()

    def slow(request: Request) -> Dict[str, Any]:
        release.wait(BOUND)
        return reply("late")

    rt = make_runtime(slow, shutdown_grace=1)

    async def main() -> subtask.TaskResult:
        try:
            return await rt.atask("slow please", "explore", timeout_seconds=0.2)
        finally:
            release.set()

    result = asyncio.run(main())
    assert result.status == "timed_out", result
    with pytest.raises(subtask.Timeout):
        result.raise_for_status()


def test_async_model_tool_and_event_callables_run_on_the_callers_loop(
    make_runtime: Any,
) -> None:
    loops: Dict[str, Any] = {}
    events: List[str] = []

    async def model(request: Request) -> Dict[str, Any]:
        loops["model"] = asyncio.get_running_loop()
        await asyncio.sleep(0)
        return tool_then_answer("lookup", {"key": "colour"})(request)

    @subtask.tool
    async def lookup(key: str) -> str:
        """Looks a key up."""
        loops["tool"] = asyncio.get_running_loop()
        await asyncio.sleep(0)
        return f"{key}=blue"

    async def on_event(event: Dict[str, Any]) -> None:
        events.append(event["kind"])

    rt = make_runtime(model, tools=[lookup], on_event=on_event)

    async def main() -> subtask.TaskResult:
        loops["caller"] = asyncio.get_running_loop()
        result = await rt.atask("look it up", "general-purpose")
        # Events reach observers through their own mailbox thread, so they may trail the
        # call's return: keep the loop (where async callables run) alive until they arrive.
        deadline = asyncio.get_running_loop().time() + 10
        while "tool done" not in events and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return result

    result = asyncio.run(main())
    assert result.answer == "tool said: colour=blue", result
    assert loops["model"] is loops["caller"] and loops["tool"] is loops["caller"]
    assert "tool done" in events, events
    # Without a loop (a synchronous call), async callables run on a loop of their own.
    assert rt.task("look it up again", "general-purpose").answer == "tool said: colour=blue"


def test_an_async_tool_is_cancelled_with_its_task(make_runtime: Any) -> None:
    entered, cancelled = threading.Event(), threading.Event()

    @subtask.tool
    async def forever() -> str:
        """Never finishes on its own."""
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "impossible"

    rt = make_runtime(tool_then_answer("forever", {}), tools=[forever])

    async def main() -> None:
        running = asyncio.ensure_future(rt.atask("forever please", "general-purpose"))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, entered.wait, BOUND)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert await loop.run_in_executor(None, cancelled.wait, BOUND)

    asyncio.run(main())


def test_atask_parallel_and_refusals(make_runtime: Any) -> None:
    rt = make_runtime(echo)

    async def main() -> None:
        results = await rt.atask_parallel(
            [{"prompt": "one", "subagent_type": "explore"}, {"prompt": "two"}]
        )
        assert [r.answer for r in results] == ["echo: one", "echo: two"]
        with pytest.raises(subtask.InvalidInput, match="no-such-type"):
            await rt.atask("hi", "no-such-type")

    asyncio.run(main())


def test_a_model_callable_sees_its_task_time_out(make_runtime: Any) -> None:
    saw_cancel = threading.Event()

    def patient_model(request: Any) -> Any:
        stop = threading.Event()
        for _ in range(int(BOUND / 0.01)):
            if subtask.cancelled():
                saw_cancel.set()
                break
            stop.wait(0.01)
        return {"choices": [{"message": {"role": "assistant", "content": "late"}}]}

    rt = make_runtime(patient_model)
    result = rt.task("wait please", "general-purpose", timeout_seconds=0.3)
    assert result.status == "timed_out", result
    assert saw_cancel.wait(BOUND), "the model callable never saw its task time out"


def test_async_callables_can_ask_whether_their_task_was_cancelled(make_runtime: Any) -> None:
    # On both paths an async callable takes: its own loop (a synchronous call) and the
    # caller's loop (an asyncio call). The answer is False: nothing was cancelled.
    seen: List[Any] = []

    @subtask.tool
    async def ask() -> str:
        """Says whether its task was cancelled."""
        seen.append(("tool", subtask.cancelled()))
        return "asked"

    async def model(request: Any) -> Any:
        seen.append(("model", subtask.cancelled()))
        return tool_then_answer("ask", {})(request)

    rt = make_runtime(model, tools=[ask])
    assert rt.task("go", "general-purpose").answer == "tool said: asked"

    async def main() -> str:
        return (await rt.atask("go", "general-purpose")).answer

    assert asyncio.run(main()) == "tool said: asked"
    assert seen == [("model", False), ("tool", False), ("model", False)] * 2
