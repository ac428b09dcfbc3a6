"""Threads: concurrent calls, the GIL, cancellation, timeouts, closing under load."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import subtask
from conftest import echo, reply, tool_then_answer


def sleepy(seconds: float) -> Any:
    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        time.sleep(seconds)
        return echo(request)

    return model


def test_eight_threads_finish_in_about_the_time_of_one(make_runtime: Any) -> None:
    rt = make_runtime(sleepy(0.3)).start()
    start = threading.Barrier(9)
    results: List[subtask.TaskResult] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        start.wait()
        result = rt.task(f"question {n}", "explore", description=f"Question {n}")
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    assert len(results) == 8 and all(r.ok for r in results)
    assert sorted(r.answer for r in results) == sorted(f"echo: question {n}" for n in range(8))
    assert elapsed < 1.5, f"8 calls of 0.3 s took {elapsed:.2f} s: they did not run at once"


def test_the_gil_is_released_while_a_call_blocks(make_runtime: Any) -> None:
    rt = make_runtime(sleepy(0.3)).start()
    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    counting = threading.Thread(target=count)
    counting.start()
    try:
        time.sleep(0.02)
        before = counter
        assert rt.task("wait", "explore", description="Wait a bit").ok
        during = counter - before
    finally:
        stop.set()
        counting.join()
    assert during > 10_000, f"the counter thread advanced only {during} times in 0.3 s"


def test_cancel_from_another_thread(make_runtime: Any) -> None:
    entered = threading.Event()
    release = threading.Event()
    task_ids: List[str] = []

    def block() -> str:
        """Blocks until the test releases it."""
        entered.set()
        release.wait(10)
        return "released"

    started = threading.Event()

    def on_event(event: Dict[str, Any]) -> None:
        if event["kind"] == "started":  # delivered on the callback's mailbox thread, maybe late
            task_ids.append(event["task"])
            started.set()

    rt = make_runtime(tool_then_answer("block", {}), tools=[block], on_event=on_event)
    outcome: List[subtask.TaskResult] = []
    caller = threading.Thread(
        target=lambda: outcome.append(
            rt.task("block please", "general-purpose", description="Block")
        )
    )
    caller.start()
    try:
        assert entered.wait(5), "the tool was never called"
        assert started.wait(5), "no started event"
        assert rt.cancel(task_ids[0]) is True
    finally:
        # A callback is not interrupted: the call returns once the tool does (or after
        # the runtime's 2 s grace for a partial result), as cancelled.
        release.set()
    caller.join(5)
    assert not caller.is_alive(), "cancel did not end the call"
    (result,) = outcome
    assert result.status == "cancelled" and not result.ok
    assert result.run_id == task_ids[0]
    assert rt.cancel(task_ids[0]) is False  # no longer live
    try:
        result.raise_for_status()
    except subtask.Cancelled as error:
        assert error.code == 5
    else:
        raise AssertionError("raise_for_status did not raise")


def test_timeout_ends_the_task_as_timed_out(make_runtime: Any) -> None:
    # The model answers after 0.6 s, too late: the runtime's verdict wins. (The call
    # returns when the callback does, which a timeout cannot interrupt.)
    rt = make_runtime(sleepy(0.6))
    result = rt.task("slow please", "explore", description="Slow", timeout_seconds=0.2)
    assert result.status == "timed_out", result
    assert "timed out after running for 200 ms" in (result.error or ""), result.error
    assert rt.stats()["timed_out"] == 1
    try:
        result.raise_for_status()
    except subtask.Timeout as error:
        assert error.code == 4 and error.result is result
    else:
        raise AssertionError("raise_for_status did not raise")


def test_close_cancels_calls_in_progress(make_runtime: Any) -> None:
    release = threading.Event()

    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        release.wait(5)
        return reply("late")

    rt = make_runtime(model, shutdown_grace=0.2)
    outcome: List[subtask.TaskResult] = []
    caller = threading.Thread(
        target=lambda: outcome.append(rt.task("wait", "explore", description="Wait"))
    )
    caller.start()
    time.sleep(0.2)
    began = time.perf_counter()
    threading.Timer(0.3, release.set).start()  # the model returns a little after the cancel
    rt.close()
    caller.join(5)
    assert time.perf_counter() - began < 2.0
    assert outcome and outcome[0].status == "cancelled"


def test_callbacks_run_on_several_threads_at_once(make_runtime: Any) -> None:
    lock = threading.Lock()
    inside = 0
    most = 0

    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.1)
        with lock:
            inside -= 1
        return echo(request)

    rt = make_runtime(model)
    rt.task_parallel(
        [
            {"description": f"Q {n}", "prompt": f"q {n}", "subagent_type": "explore"}
            for n in range(4)
        ]
    )
    assert most == 4


EXIT_SCRIPT = """
import time
import subtask

def slow(request):
    end = time.time() + 2.5  # outlives the task, its partial-result grace and the shutdown
    while time.time() < end:
        time.sleep(0.005)  # takes the GIL again and again
    return {"choices": [{"message": {"role": "assistant", "content": "late"}}]}

rt = subtask.Runtime(model=slow, transcripts=False, shutdown_grace=0.1)
print(rt.task("slow", "explore", description="Slow", timeout_seconds=0.1).status)
"""


def test_exit_waits_for_a_callback_still_running(tmp_path: Any) -> None:
    # A Python callback still running on a Rust thread while the interpreter finalizes
    # would abort the process (CPython ends the thread with pthread_exit).
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "timed_out"


def test_many_runtimes_come_and_go(tmp_path: Any) -> None:
    for n in range(20):
        with subtask.Runtime(model=echo, workspace=tmp_path, transcripts=False) as rt:
            assert (
                rt.task_parallel(
                    [
                        {"description": "Q", "prompt": f"q {n} {k}", "subagent_type": "explore"}
                        for k in range(3)
                    ]
                )[2].answer
                == f"echo: q {n} 2"
            )
