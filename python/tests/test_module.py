"""The module-level `subtask.task` for scripts, on the default runtime."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator

import pytest
import subtask
from conftest import echo


@pytest.fixture(autouse=True)
def fresh_default() -> Iterator[None]:
    subtask.close_default_runtime()
    yield
    subtask.close_default_runtime()


def test_task_without_a_model_is_a_config_error_naming_subtask_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("SUBTASK_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(subtask.ConfigError, match="SUBTASK_MODEL") as caught:
        subtask.task("Where are timeouts enforced?", "explore")
    assert caught.value.code == 2
    # The failure is not cached: a later call tries the environment again.
    with pytest.raises(subtask.ConfigError):
        subtask.task("Where?", "explore")


def test_task_returns_the_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    rt = subtask.Runtime(model=echo, workspace=tmp_path, transcripts=False)
    monkeypatch.setattr(subtask, "_default", rt)
    assert subtask.default_runtime() is rt
    assert subtask.task("Where are timeouts enforced?", "explore") == (
        "echo: Where are timeouts enforced?"
    )


def test_task_raises_when_the_run_does_not_complete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    def slow(request: Dict[str, Any]) -> Dict[str, Any]:
        time.sleep(0.5)
        return echo(request)

    rt = subtask.Runtime(model=slow, workspace=tmp_path, transcripts=False, shutdown_grace=1)
    monkeypatch.setattr(subtask, "_default", rt)
    with pytest.raises(subtask.Timeout) as caught:
        subtask.task("slow", "explore", timeout_seconds=0.1)
    assert caught.value.result is not None and caught.value.result.status == "timed_out"
    with pytest.raises(subtask.InvalidInput, match="subagent_type"):
        subtask.task("Where?", "nope")
