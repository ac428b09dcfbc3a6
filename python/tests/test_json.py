"""Parsing the native layer's JSON: orjson when installed, the standard library otherwise,
with the same values either way; and results built from the native output with every
field."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import subtask
from conftest import reply
from subtask import _json
from subtask._results import (
    TaskOutput,
    TaskResult,
    Usage,
    output_from_native,
    result_from_native,
)


@pytest.mark.skipif(
    not os.environ.get("SUBTASK_TEST_EXPECT_ORJSON"),
    reason="python/run_tests.sh installs the `fast` extra and sets SUBTASK_TEST_EXPECT_ORJSON",
)
def test_the_test_venv_runs_with_orjson() -> None:
    assert _json.FAST, "orjson is not in use: install subtask-agents[fast]"


def test_loads_takes_text_and_bytes_and_nan() -> None:
    assert _json.loads('{"a": [1, 2]}') == {"a": [1, 2]}
    assert _json.loads(b'{"a": "\xc3\xa9"}') == {"a": "é"}
    assert str(_json.loads('{"x": NaN}')["x"]) == "nan"
    with pytest.raises(ValueError):
        _json.loads("{not json")


def test_a_tool_reads_a_models_big_integers_exactly() -> None:
    big = 123456789012345678901234567890

    @subtask.tool
    def echo_number(n: int) -> str:
        """Echoes n."""
        return repr(n)

    assert echo_number.invoke(f'{{"n": {big}}}') == repr(big)


def test_the_standard_library_alone_runs_a_task_the_same_way(tmp_path: Any) -> None:
    # A fresh interpreter with SUBTASK_PURE_JSON=1: no orjson, same results.
    script = """
import json, sys
import subtask
from subtask import _json
from conftest import echo
assert not _json.FAST
with subtask.Runtime(model=echo, transcripts=False, workspace=sys.argv[1]) as rt:
    result = rt.task("héllo", "explore")
print(json.dumps([result.answer, result.status, result.turns]))
"""
    env = dict(os.environ, SUBTASK_PURE_JSON="1")
    tests = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = tests + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["echo: héllo", "completed", 1]


@pytest.mark.parametrize("cls", [Usage, TaskResult, TaskOutput])
def test_results_built_from_json_have_every_field(cls: Any) -> None:
    data = {
        "results": [{"answer": "a", "status": "completed", "usage": {"input_tokens": 3}}],
        "answer": "a",
        "status": "completed",
        "usage": {"input_tokens": 3},
    }
    built = cls.from_json(data)
    names = {field.name for field in dataclasses.fields(cls)}
    assert set(vars(built)) == names
    # Equal to the same value made through __init__.
    assert built == cls(**{name: getattr(built, name) for name in names})
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, next(iter(names)), None)


def test_a_dict_model_gets_a_parsed_request_and_may_return_bytes(make_runtime: Any) -> None:
    seen = []

    def model(request: Any) -> bytes:
        seen.append(type(request).__name__)
        return json.dumps(reply("bytes ok")).encode()

    rt = make_runtime(model)
    assert rt.task("ping", "explore").answer == "bytes ok"
    assert seen == ["dict"]


def test_a_model_returning_bytes_that_are_not_utf8_fails_the_run_clearly(
    make_runtime: Any,
) -> None:
    rt = make_runtime(subtask.raw_json(lambda request_json: b'{"x": "caf\xe9"}'))
    result = rt.task("ping", "explore")
    assert result.status == "failed"
    assert "UnicodeDecodeError" in (result.error or ""), result.error


def test_the_native_output_takes_the_fast_way_to_results(make_runtime: Any) -> None:
    # result_from_native trusts the native layer to write exactly TaskResult's fields (and
    # Usage's): if src/ffi.rs adds or renames one, this fails instead of every result
    # silently going the slow, defensive way.
    rt = make_runtime(lambda request: reply("done", prompt_tokens=7))
    output = rt._call(json.dumps({"prompt": "hi", "subagent_type": "explore", "description": "hi"}))
    (data,) = output["results"]
    assert set(data) == {field.name for field in dataclasses.fields(TaskResult)}
    assert set(data["usage"]) == {field.name for field in dataclasses.fields(Usage)}
    slow = TaskResult.from_json(json.loads(json.dumps(data)))
    fast = result_from_native(data)
    assert fast == slow and fast.usage.input_tokens == 7 and fast.answer == "done"
    assert vars(fast).keys() == vars(slow).keys()
    text = json.dumps({"prompt": "hi", "subagent_type": "explore", "description": "hi"})
    whole = output_from_native(rt._call(text))
    assert isinstance(whole, TaskOutput) and whole.results[0].answer == "done"


def test_results_from_another_shape_go_the_defensive_way() -> None:
    result = result_from_native({"answer": "a", "status": "completed", "usage": {}})
    assert result == TaskResult(answer="a", status="completed")


@pytest.mark.parametrize(
    "arguments, plain",
    [
        ({"prompt": "héllo \u2028 \x00", "subagent_type": "explore", "read_only": True}, True),
        ({"prompt": "p", "timeout_seconds": 1.5, "tools": ["read"], "n": 2**63 - 1}, True),
        ({"prompt": "p", "timeout_seconds": float("nan")}, False),
        ({"prompt": "p", "timeout_seconds": float("inf")}, False),
        ({"prompt": "p", "n": 2**70}, False),
        ({"prompt": "p", "tools": ("read",)}, False),
    ],
)
def test_task_arguments_are_written_as_the_standard_library_writes_them(
    arguments: Any, plain: bool
) -> None:
    written = _json.dumps_arguments(arguments)
    if plain:
        # orjson's text (when installed) holds the same values as the standard library's.
        assert isinstance(written, bytes) == _json.FAST
        assert json.loads(written) == json.loads(json.dumps(arguments))
    else:
        # Not plain: the standard library's own text (NaN stays NaN, which the native layer
        # refuses, where orjson would write null and the run would take the default).
        assert written == json.dumps(arguments)


def test_a_task_with_a_nan_timeout_is_refused_not_run_with_the_default(
    make_runtime: Any,
) -> None:
    rt = make_runtime()
    with pytest.raises(subtask.InvalidInput):
        rt.task("ping", "explore", timeout_seconds=float("nan"))
