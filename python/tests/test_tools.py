"""`subtask.tool`: JSON Schemas from signatures and docstrings."""

from __future__ import annotations

import enum
from typing import Any, Dict, List, Literal, Optional

import pytest
import subtask


def test_schema_from_type_hints_and_google_docstring() -> None:
    @subtask.tool
    def search(
        query: str,
        paths: List[str],
        limit: int = 10,
        fuzzy: bool = False,
        threshold: Optional[float] = None,
        mode: Literal["fast", "exact"] = "fast",
        extra: Dict[str, Any] = {},  # noqa: B006 - never mutated
    ) -> List[str]:
        """Searches files for a query.

        Matches are case-sensitive.

        Args:
            query: What to look for.
            paths (list[str]): Where to look,
                relative to the workspace.
            limit: The most matches to return.

        Returns:
            The matching lines.
        """
        return []

    assert isinstance(search, subtask.Tool)
    assert search.name == "search"
    assert search.description == "Searches files for a query."
    assert search.read_only is False
    assert search.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "paths": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Where to look, relative to the workspace.",
            },
            "limit": {
                "type": "integer",
                "description": "The most matches to return.",
                "default": 10,
            },
            "fuzzy": {"type": "boolean", "default": False},
            "threshold": {"type": "number"},
            "mode": {"enum": ["fast", "exact"], "default": "fast"},
            "extra": {"type": "object", "default": {}},
        },
        "required": ["query", "paths"],
        "additionalProperties": False,
    }


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_numpy_docstring_options_and_invoke() -> None:
    @subtask.tool(name="paint-it", read_only=True)
    def paint(colour: Colour, coats: int, note: Optional[str] = None) -> Dict[str, Any]:
        """Paints the wall.

        Parameters
        ----------
        colour : Colour
            The colour.
        coats : int
            How many coats.
        """
        return {"colour": colour, "coats": coats}

    assert paint.name == "paint-it" and paint.read_only
    assert paint.parameters["properties"]["colour"] == {
        "enum": ["red", "blue"],
        "description": "The colour.",
    }
    assert paint.parameters["properties"]["coats"]["description"] == "How many coats."
    assert paint.parameters["required"] == ["colour", "coats"]
    assert paint.invoke('{"colour": "red", "coats": 2}') == '{"colour": "red", "coats": 2}'
    assert paint.openai_definition()["function"]["name"] == "paint-it"


def test_a_hint_that_does_not_resolve_loses_only_its_own_type() -> None:
    class Local:
        pass

    def use(thing: Local, count: int) -> None:
        """Uses a thing."""

    properties = subtask.tool(use).parameters["properties"]
    assert properties == {"thing": {}, "count": {"type": "integer"}}


def test_kwargs_allow_more_properties_and_bad_signatures_fail() -> None:
    def loose(**options: Any) -> None:
        """Anything goes."""

    assert "additionalProperties" not in subtask.tool(loose).parameters

    def positional(*values: int) -> int:
        return sum(values)

    with pytest.raises(TypeError, match="by name"):
        subtask.tool(positional)
    with pytest.raises(ValueError, match="letters"):
        subtask.tool(name="has space")(loose)


def test_plain_functions_become_tools_in_a_runtime(tmp_path: Any) -> None:
    def ping() -> str:
        """Answers pong."""
        return "pong"

    with subtask.Runtime(model=lambda r: {}, tools=[ping], workspace=tmp_path) as rt:
        (tool,) = rt.tools
        assert tool.name == "ping" and tool.parameters["properties"] == {}
        assert tool.invoke("{}") == "pong" and tool.invoke("") == "pong"


def test_duplicate_tool_names_are_a_config_error(tmp_path: Any) -> None:
    def read(path: str) -> str:
        """Shadows the built-in read."""
        return path

    rt = subtask.Runtime(model=lambda r: {}, tools=[read], workspace=tmp_path, transcripts=False)
    with pytest.raises(subtask.ConfigError, match="read"):
        rt.start()
    rt.close()
