"""Parsing the JSON subtask's native layer writes, and writing a task's typed arguments:
orjson when it is installed (``pip install "subtask-agents[fast]"``), the standard library
otherwise.

orjson parses a call's output about 3x faster and a dict model's request about 1.4x
(``SUBTASK_PURE_JSON=1 python python/bench.py`` against ``python python/bench.py`` shows the
difference). Both give the same values for this text: serde_json writes no ``NaN`` and no
integer beyond 64 bits, the two places where orjson reads differently. What orjson refuses
goes to the standard library, which words the error. JSON written by a model (a tool's
arguments) stays on the standard library, and so does everything Python writes except
:func:`dumps_arguments`'s plain values.
``SUBTASK_PURE_JSON=1`` in the environment turns orjson off.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Union

__all__ = ["FAST", "dumps_arguments", "loads"]

_orjson: Any
try:
    if os.environ.get("SUBTASK_PURE_JSON"):
        raise ImportError("SUBTASK_PURE_JSON is set")
    import orjson as _orjson
except ImportError:
    _orjson = None

#: Whether orjson is in use.
FAST = _orjson is not None


def loads(text: Union[str, bytes]) -> Any:
    """Parses JSON text the native layer wrote."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass  # the standard library decides (and words the error)
    return json.loads(text)


def dumps_arguments(arguments: Mapping[str, Any]) -> Union[str, bytes]:
    """A task's arguments (``Runtime.task``'s fields) as JSON text. orjson writes them when
    every value is plain (see :func:`_plain`), where it writes the same values as the
    standard library; anything else (NaN and infinities, which orjson writes as ``null``,
    integers beyond 64 bits, other types) goes to the standard library."""
    if _orjson is not None:
        for value in arguments.values():
            if type(value) is not str and not _plain(value):
                break
        else:
            data: bytes = _orjson.dumps(arguments)
            return data
    return json.dumps(arguments)


def _plain(value: Any) -> bool:
    """A string, a boolean, an integer of at most 64 bits, a finite float or a list of
    strings (exactly these types: orjson and the standard library treat subclasses
    differently)."""
    kind = type(value)
    if kind is str or kind is bool:
        return True
    if kind is int:
        return bool(-(2**63) <= value < 2**64)
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(type(item) is str for item in value)
    return False
