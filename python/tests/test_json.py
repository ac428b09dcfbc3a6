"""The JSON layer: orjson when installed, the standard library otherwise, with the same
values either way; and results built from the native output with every field."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import subtask
from conftest import reply
from subtask import _json
from subtask._results import TaskOutput, TaskResult, Usage


def test_the_test_venv_runs_with_orjson() -> None:
    # python/run_tests.sh installs the wheel with its `fast` extra.
    assert _json.FAST, "orjson is not in use: install subtask-agents[fast]"


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True], "c": {"d": "é ✓ \u2028"}},
        {"big": 2**70},  # beyond 64 bits: orjson refuses, the standard library writes it
        {1: "an int key"},
        {"when": datetime.datetime(2026, 12, 1, 12, 0)},
    ],
)
def test_dumps_gives_the_standard_librarys_values(value: Any) -> None:
    expected = json.loads(json.dumps(value, ensure_ascii=False, default=str))
    assert json.loads(_json.dumps(value, default=str)) == expected
    assert json.loads(_json.dumps_bytes(value, default=str)) == expected


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


def test_dumps_refuses_what_the_standard_library_refuses() -> None:
    with pytest.raises(TypeError):
        _json.dumps({"x": object()})


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
    # Equal to (and hashed like) the same value made through __init__.
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
