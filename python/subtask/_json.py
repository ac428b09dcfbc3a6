"""Parsing the JSON subtask's native layer writes: orjson when it is installed (``pip
install "subtask-agents[fast]"``), the standard library otherwise.

orjson parses a call's output about 3x faster and a dict model's request about 1.4x
(``SUBTASK_PURE_JSON=1 python python/bench.py`` against ``python python/bench.py`` shows the
difference). Both give the same values for this text: serde_json writes no ``NaN`` and no
integer beyond 64 bits, the two places where orjson reads differently. What orjson refuses
goes to the standard library, which words the error. JSON written by a model (a tool's
arguments) and everything Python writes stay on the standard library.
``SUBTASK_PURE_JSON=1`` in the environment turns orjson off.
"""

from __future__ import annotations

import json
import os
from typing import Any, Union

__all__ = ["FAST", "loads"]

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
