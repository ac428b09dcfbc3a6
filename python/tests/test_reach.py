"""Named Python models, raw JSON models, and the model-facing text written by Rust."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
import subtask
from conftest import Request, echo, last_user, reply


def test_named_models_serve_the_names_calls_and_agent_files_use(
    make_runtime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SUBTASK_MODEL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "quick.md").write_text(
        "---\nname: quick\ndescription: Answers fast.\nmodel: haiku\n---\nBe quick.\n"
    )
    seen: Dict[str, str] = {}

    def haiku(request: Request) -> Dict[str, Any]:
        seen["model"] = request["model"]
        return reply("haiku says: " + last_user(request))

    rt = make_runtime(echo, models={"haiku": haiku}, agents_dirs=[agents])
    by_call = rt.task("hello", "explore", model="haiku")
    assert by_call.answer == "haiku says: hello", by_call
    assert seen["model"] == "haiku"
    assert "haiku" in (by_call.model or "")
    by_type = rt.task("hi there", "quick")
    assert by_type.answer == "haiku says: hi there", by_type
    # Names the host did not map still go to the environment's providers, which have no
    # key here: refused before anything runs, naming what to set.
    with pytest.raises(subtask.InvalidInput):
        rt.task("hello", "explore", model="openai:gpt-4.1-mini")


def test_models_must_map_names_to_callables() -> None:
    with pytest.raises(subtask.InvalidInput, match="models"):
        subtask.Runtime(model=echo, models={"haiku": "not callable"})  # type: ignore[dict-item]
    with pytest.raises(subtask.InvalidInput, match="models"):
        subtask.Runtime(model=echo, models={"": echo})


def test_a_raw_json_model_takes_and_returns_text(make_runtime: Any) -> None:
    kinds = []

    @subtask.raw_json
    def model(request_json: str) -> str:
        kinds.append(type(request_json).__name__)
        request = json.loads(request_json)
        return json.dumps(reply("raw: " + last_user(request)))

    rt = make_runtime(model)
    assert rt.task("ping", "explore").answer == "raw: ping"
    assert kinds == ["str"]


def test_a_raw_json_model_returning_bad_json_fails_the_run_clearly(make_runtime: Any) -> None:
    rt = make_runtime(subtask.raw_json(lambda request_json: "{not json"))
    result = rt.task("ping", "explore")
    assert result.status == "failed"
    assert "not JSON" in (result.error or ""), result.error


def test_text_and_footer_come_from_rust(make_runtime: Any) -> None:
    rt = make_runtime(echo)
    result = rt.task("hello", "explore", description="Say hello")
    assert result.footer.startswith(f"[run {result.run_id} · completed · ")
    assert result.footer.endswith(" s]")
    assert result.text == f"echo: hello\n\n{result.footer}"
    assert result.to_text() == result.text
    output = rt.call(
        {
            "tasks": [
                {"description": "One", "prompt": "one", "subagent_type": "explore"},
                {"description": "Two", "prompt": "two", "subagent_type": "explore"},
            ]
        }
    )
    assert output.text.startswith("2 tasks: 2 completed, 0 did not.")
    for result in output.results:
        assert result.text in output.text and result.footer in output.text


def test_subtask_task_and_runtime_task_take_the_same_order(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = make_runtime(echo)
    monkeypatch.setattr(subtask, "_default", rt)
    assert subtask.task("same order", "explore") == rt.task("same order", "explore").answer
    assert rt.task("default type").subagent_type == "general-purpose"
    with pytest.raises(TypeError):
        rt.task("a", "explore", "third positional")  # type: ignore[misc]


def test_named_models_do_not_open_the_scripted_provider_to_calls(
    make_runtime: Any, tmp_path: Path
) -> None:
    # A prompt-injected model choosing a model that reads a file is still refused when
    # the host maps other names.
    script = tmp_path / "script.json"
    script.write_text('[{"text": "from the file"}]')
    rt = make_runtime(echo, models={"haiku": echo})
    with pytest.raises(subtask.InvalidInput, match="script"):
        rt.task("hello", "explore", model=f"scripted:{script}")
