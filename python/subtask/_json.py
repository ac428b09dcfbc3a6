"""JSON between Python and the native layer: orjson when it is installed (``pip install
"subtask-agents[fast]"``), the standard library otherwise.

orjson parses a call's output about 3x faster and writes a model's reply about 10x faster
(``python/bench.py`` prints the figures). Both write the same compact text. Whatever orjson
refuses and the standard library takes (``NaN`` literals, integers beyond 64 bits to write)
goes to the standard library. ``loads`` is for JSON subtask's native layer wrote: orjson reads
an integer beyond 64 bits as a float, which no such text holds (serde_json reads them as
floats already); JSON a model wrote (a tool's arguments) goes to the standard library.
``SUBTASK_PURE_JSON=1`` in the environment turns orjson off.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Union

__all__ = ["FAST", "dumps", "dumps_bytes", "loads"]

_orjson: Any
try:
    if os.environ.get("SUBTASK_PURE_JSON"):
        raise ImportError("SUBTASK_PURE_JSON is set")
    import orjson as _orjson
except ImportError:
    _orjson = None

#: Whether orjson is in use.
FAST = _orjson is not None

# Keys and values as the standard library takes them: non-string keys written as strings,
# datetimes and dataclasses left to `default` (the standard library has no format of its
# own for them).
_DUMPS_OPTIONS = (
    _orjson.OPT_NON_STR_KEYS | _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
    if _orjson is not None
    else 0
)


def loads(text: Union[str, bytes]) -> Any:
    """Parses JSON text the native layer wrote."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass  # the standard library decides (and words the error)
    return json.loads(text)


def dumps_bytes(value: Any, default: Optional[Callable[[Any], Any]] = None) -> bytes:
    """``value`` as compact UTF-8 JSON, the way the native layer takes text."""
    if _orjson is not None:
        try:
            data: bytes = _orjson.dumps(value, default=default, option=_DUMPS_OPTIONS)
            return data
        except TypeError:
            pass  # the standard library decides (and words the error)
    # Lone surrogates pass through as the native layer's `_text` lets them: it names them.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode(
        "utf-8", "surrogatepass"
    )


def dumps(value: Any, default: Optional[Callable[[Any], Any]] = None) -> str:
    """``value`` as JSON text (non-ASCII characters as they are)."""
    return dumps_bytes(value, default).decode("utf-8", "surrogatepass")
