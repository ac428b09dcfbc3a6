"""Host tools: Python functions subagents may call, described by a JSON Schema made from
their signature and docstring."""

from __future__ import annotations

import enum
import inspect
import json
import re
import sys
import typing
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar, Union, overload

__all__ = ["Tool", "tool", "as_tool"]

R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Tool(Generic[R]):
    """A Python function offered to subagents as a tool.

    ``name`` (1-64 letters, digits, ``_`` or ``-``), ``description`` (what the model reads),
    ``parameters`` (the JSON Schema of its arguments, an object schema) and ``read_only``
    (whether read-only subagent types such as ``plan`` may use it; ``explore`` keeps its
    fixed list of tools). Calling the tool calls the function.

    The function is called with the model's arguments as keyword arguments, on one of the
    runtime's threads, possibly several times at once: it must be thread-safe. Its return
    value is what the model reads: a ``str`` as is, ``None`` as an empty string, anything
    else as JSON. An exception it raises is reported to the model as a tool error (its
    type and message), and the subagent carries on.
    """

    __slots__ = ("func", "name", "description", "parameters", "read_only", "__wrapped__")

    def __init__(
        self,
        func: Callable[..., R],
        name: str,
        description: str,
        parameters: Dict[str, Any],
        read_only: bool = False,
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
        if parameters.get("type") != "object":
            raise ValueError("a tool's parameters must be an object schema")
        self.func = func
        self.name = name
        self.description = description
        self.parameters = parameters
        self.read_only = read_only
        self.__wrapped__ = func

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r}, read_only={self.read_only})"

    def openai_definition(self) -> Dict[str, Any]:
        """The definition in OpenAI's ``tools`` format (what subagents are offered)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def invoke(self, input_json: str, finish: Optional[Callable[[Any], Any]] = None) -> str:
        """Runs a call from the model: JSON arguments in, the text the model reads out.
        ``finish`` turns the function's return value into the result (the runtime passes
        one that awaits a coroutine, for ``async def`` tools).

        Raises whatever the function raises.
        """
        # The standard library, not orjson: a model may write integers beyond 64 bits.
        arguments = json.loads(input_json) if input_json.strip() else {}
        if not isinstance(arguments, dict):
            raise TypeError("the arguments must be a JSON object")
        result: Any = self.func(**arguments)
        if finish is not None:
            result = finish(result)
        if result is None:
            return ""
        if isinstance(result, str):
            return result
        return json.dumps(result, ensure_ascii=False, default=str)


@overload
def tool(func: Callable[..., R]) -> Tool[R]: ...


@overload
def tool(
    func: None = None,
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    read_only: bool = False,
) -> Callable[[Callable[..., R]], Tool[R]]: ...


def tool(
    func: Optional[Callable[..., R]] = None,
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    read_only: bool = False,
) -> Union[Tool[R], Callable[[Callable[..., R]], Tool[R]]]:
    """Turns a typed function into a :class:`Tool`, for ``Runtime(tools=[...])``.

    The schema comes from the signature and type hints (``str``, ``int``, ``float``,
    ``bool``, ``list[str]`` and other lists, ``dict``, ``Literal[...]``, enums,
    ``Optional[...]``); parameters without a default are required. The description is the
    docstring's first paragraph; a Google-style ``Args:`` section or a NumPy-style
    ``Parameters`` section describes the parameters.

    >>> @tool
    ... def word_count(text: str) -> int:
    ...     '''Counts the words of a text.
    ...
    ...     Args:
    ...         text: The text to count.
    ...     '''
    ...     return len(text.split())
    >>> word_count.parameters["properties"]["text"]
    {'type': 'string', 'description': 'The text to count.'}

    Use it bare (``@tool``) or with options (``@tool(name=..., read_only=True)``).
    """

    def make(func: Callable[..., R]) -> Tool[R]:
        return as_tool(func, name=name, description=description, read_only=read_only)

    if func is not None:
        return make(func)
    return make


def as_tool(
    func: Union[Callable[..., Any], Tool[Any]],
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    read_only: bool = False,
) -> Tool[Any]:
    """``func`` as a :class:`Tool` (a :class:`Tool` is returned as it is)."""
    if isinstance(func, Tool):
        return func
    if not callable(func):
        raise TypeError(f"a tool must be a function, not {type(func).__name__}")
    summary, parameter_docs = _parse_docstring(inspect.getdoc(func) or "")
    return Tool(
        func,
        name=name or str(getattr(func, "__name__", "tool")),
        description=description if description is not None else summary,
        parameters=_schema(func, parameter_docs),
        read_only=read_only,
    )


def _schema(func: Callable[..., Any], docs: Dict[str, str]) -> Dict[str, Any]:
    signature = inspect.signature(func)
    hints = _type_hints(func)
    properties: Dict[str, Any] = {}
    required: List[str] = []
    additional = False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            additional = True
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise TypeError(
                f"tool parameter {parameter.name!r}: the model passes arguments by name, "
                "so *args and positional-only parameters cannot be filled"
            )
        hint = hints.get(parameter.name, inspect.Parameter.empty)
        schema, optional = _type_schema(hint)
        if parameter.name in docs:
            schema["description"] = docs[parameter.name]
        if parameter.default is not inspect.Parameter.empty:
            if parameter.default is not None and _is_json(parameter.default):
                schema["default"] = parameter.default
        elif not optional:
            required.append(parameter.name)
        properties[parameter.name] = schema
    schema_: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema_["required"] = required
    if not additional:
        schema_["additionalProperties"] = False
    return schema_


def _type_hints(func: Callable[..., Any]) -> Dict[str, Any]:
    """The function's resolved type hints; a hint that does not resolve (a class local to a
    function, under ``from __future__ import annotations``) is left out, not the others."""
    try:
        return typing.get_type_hints(func)
    except Exception:
        pass
    hints: Dict[str, Any] = {}
    namespace = getattr(func, "__globals__", {})
    for name, annotation in getattr(func, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 - the function's own
            except Exception:
                continue
        hints[name] = annotation
    return hints


_SCALARS: Dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any) -> Tuple[Dict[str, Any], bool]:
    """The JSON Schema of a type hint, and whether it admits ``None``."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}, False
    if hint is None or hint is type(None):
        return {"type": "null"}, True
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}, False
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}, False
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin is Union or (sys.version_info >= (3, 10) and _is_union_type(hint)):
        members = [argument for argument in arguments if argument is not type(None)]
        optional = len(members) < len(arguments)
        if len(members) == 1:
            return _type_schema(members[0])[0], optional
        return {"anyOf": [_type_schema(member)[0] for member in members]}, optional
    if origin is typing.Literal:
        return {"enum": list(arguments)}, False
    if hint in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset):
        schema: Dict[str, Any] = {"type": "array"}
        if arguments and arguments[0] is not Ellipsis:
            items = _type_schema(arguments[0])[0]
            if items:
                schema["items"] = items
        return schema, False
    if hint is dict or origin is dict:
        return {"type": "object"}, False
    return {}, False


def _is_union_type(hint: Any) -> bool:
    import types

    return isinstance(hint, types.UnionType)  # X | Y (3.10+)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


_GOOGLE_SECTIONS = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|"
    r"Yields|Raises|Examples?|Notes?|See Also|Attributes|Warnings?)\s*:\s*$"
)
_NUMPY_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def _parse_docstring(doc: str) -> Tuple[str, Dict[str, str]]:
    """The first paragraph, and parameter descriptions from an ``Args:`` (Google) or
    ``Parameters`` (NumPy) section."""
    lines = doc.expandtabs().splitlines()
    summary: List[str] = []
    for line in lines:
        if not line.strip() or _GOOGLE_SECTIONS.match(line.strip()):
            break
        summary.append(line.strip())
    params: Dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        header = line.strip()
        google = _GOOGLE_SECTIONS.match(header)
        numpy = (
            index + 1 < len(lines)
            and _NUMPY_UNDERLINE.match(lines[index + 1])
            and header in ("Parameters", "Other Parameters", "Keyword Arguments")
        )
        if google and google.group(1) in (
            "Args",
            "Arguments",
            "Parameters",
            "Params",
            "Keyword Args",
            "Keyword Arguments",
        ):
            index = _parse_google(lines, index + 1, _indent(line), params)
        elif numpy:
            index = _parse_numpy(lines, index + 2, _indent(line), params)
        else:
            index += 1
    return " ".join(summary), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _parse_google(lines: List[str], index: int, section_indent: int, out: Dict[str, str]) -> int:
    entry = re.compile(r"^\*{0,2}(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
    item_indent: Optional[int] = None
    current: Optional[str] = None
    while index < len(lines):
        line = lines[index]
        if line.strip():
            indent = _indent(line)
            if indent <= section_indent:
                break
            if item_indent is None:
                item_indent = indent
            match = entry.match(line.strip())
            if indent == item_indent and match:
                current = match.group(1)
                out[current] = match.group(3).strip()
            elif current is not None and indent > item_indent:
                out[current] = (out[current] + " " + line.strip()).strip()
        index += 1
    return index


def _parse_numpy(lines: List[str], index: int, section_indent: int, out: Dict[str, str]) -> int:
    current: Optional[str] = None
    while index < len(lines):
        line = lines[index]
        if index + 1 < len(lines) and _NUMPY_UNDERLINE.match(lines[index + 1]):
            break  # the next section
        if line.strip():
            if _indent(line) == section_indent:
                current = line.split(":")[0].strip().lstrip("*")
                out[current] = ""
            elif current is not None:
                out[current] = (out[current] + " " + line.strip()).strip()
        index += 1
    return index
