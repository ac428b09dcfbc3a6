"""``Runtime``: the thread pools, subagent types, tools and model behind the ``task`` tool."""

from __future__ import annotations

import asyncio
import atexit
import datetime
import json
import logging
import os
import threading
import weakref
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from . import _json
from ._callables import HostLoops, is_raw_json, resolve
from ._errors import Error, InvalidInput, Shutdown
from ._ffi import (
    Canceller,
    Handler,
    NativeRuntime,
    current_cancel_check,
    validate_settings,
    wait_for_running_callbacks,
)
from ._results import TaskOutput, TaskResult, output_from_native, result_from_native
from ._tools import Tool, as_tool

__all__ = ["Runtime", "ModelCallable", "EventCallable"]

log = logging.getLogger("subtask")

R = TypeVar("R")

#: A host model: takes an OpenAI Chat Completions request body (``model``, ``messages``,
#: ``tools``, ``max_tokens``) and returns a Chat Completions response body
#: (``{"choices": [{"message": {...}, "finish_reason": ...}], "usage": {...}}``) as a dict,
#: a JSON string, or an object with ``model_dump()`` (such as the ``openai`` package's).
#: It may be an ``async def`` function. Marked with :func:`subtask.raw_json`, it takes the
#: request as JSON text instead of a dict (and returns JSON text): the fast path.
ModelCallable = Callable[[Any], Any]
#: Receives each task event as a dict: ``{"task": ID, "label": ..., "kind": ..., ...}``.
#: It may be an ``async def`` function.
EventCallable = Callable[[Dict[str, Any]], Any]

Seconds = Union[int, float, datetime.timedelta]
PathLike = Union[str, "os.PathLike[str]"]

_FORMATS = ("openai", "anthropic", "mcp")

# Every live runtime, closed at interpreter exit: no callback into Python may run once
# the interpreter finalizes.
_live: "weakref.WeakSet[Runtime]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_live):
        try:
            runtime.close()
        except Exception:  # pragma: no cover - best effort at exit
            log.exception("closing a subtask runtime at exit failed")
    wait_for_running_callbacks()


def _describe_exception(exception: BaseException) -> str:
    text = str(exception)
    return f"{type(exception).__name__}: {text}" if text else type(exception).__name__


def _seconds(value: Optional[Seconds]) -> Optional[float]:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def _response_text(response: Any) -> str:
    """A model callable's return value as Chat Completions JSON text."""
    if isinstance(response, str):
        return response
    if isinstance(response, (bytes, bytearray)):
        return response.decode("utf-8")  # bad UTF-8 fails the run, clearly
    for method in ("model_dump", "to_dict"):  # pydantic models (openai), others
        if hasattr(response, method):
            response = getattr(response, method)()
            break
    return json.dumps(response)


class Runtime:
    """A runtime with the ``task`` tool: thread pools, subagent types, tools and a model.

    ::

        with subtask.Runtime(model="anthropic:claude-sonnet-4-5") as rt:
            result = rt.task("Where are deadlines enforced?", "explore")
            print(result.answer if result.ok else result.error)

    Settings (all optional; ``None`` means the default):

    - ``model``: ``"provider:model"`` or an alias (default: ``SUBTASK_MODEL``), with
      ``api_key`` and ``base_url``; or a Python callable that answers Chat Completions
      requests (see :data:`ModelCallable`), named ``model_name`` in requests and footers.
    - ``models``: ``{name: callable}``, Python models served under the names subagent
      types (``model: haiku`` in an agent file) and ``task`` calls (``model="haiku"``)
      give; other names still go to the environment's providers.
    - ``workspace`` (default: the current directory when the Runtime is made),
      ``transcripts`` (a directory, or ``"off"``/``False``; default: the per-user state
      directory, ``$XDG_STATE_HOME/subtask/transcripts/<workspace>/``, out of the
      subagents' reach), ``agents_dirs`` (directories of Markdown subagent types, yours),
      ``trust_project_agents`` (``True`` lets the workspace's ``.subtask/agents`` files
      replace built-in types; default: ``SUBTASK_TRUST_PROJECT_AGENTS``, else ``False``).
    - ``scheduler_threads`` (4), ``execution_threads`` (8), ``max_queued`` (64),
      ``max_parallel`` (10 tasks per call), ``max_depth`` (0: no nesting).
    - ``poll_interval`` (2 s), ``execution_timeout`` (300 s), ``queue_timeout`` (60 s),
      ``wait_timeout`` (the two plus 5 s), ``shutdown_grace`` (5 s): seconds or
      ``timedelta``.
    - ``tools``: functions (or :class:`Tool`) subagents may call; ``on_event``: a callable
      receiving every task event as a dict (on the runtime's threads; keep it quick).

    Settings are checked at once (an unknown key raises :class:`InvalidInput`). The native
    runtime is built on the first call that needs it (``task``, ``call``, ``stats``...), or
    by :meth:`start`; a missing model raises :class:`ConfigError` then. Tools can be added
    with :meth:`tool` until that moment, not after.

    Thread-safe: every method may be called from several threads at once, and a blocking
    call releases the GIL. Callbacks (model, tools, events) run on the runtime's threads,
    several at once, so they must be thread-safe too; an exception in one never crosses into
    the runtime (a tool's becomes a tool error the model reads, a model's fails the task
    with its message, an event handler's is logged).

    Callbacks are not interrupted: when a task times out or is cancelled while one of its
    callbacks runs, its call returns once the callback does (or after the runtime's 2 s
    grace for a partial result), and the callback's thread stays busy until it returns. A
    long tool checks :func:`subtask.cancelled` and returns early; an ``async def`` tool
    running on the caller's loop is cancelled (``CancelledError``).

    asyncio: :meth:`acall`, :meth:`atask` and :meth:`atask_parallel` never block the event
    loop, and cancelling the awaiting task cancels the runs. Model, tool and event
    callables may be ``async def``; during an asyncio call they run on the caller's loop
    (so do not block that loop with a synchronous call meanwhile), otherwise on a loop of
    their own.

    Close it with :meth:`close` or a ``with`` block; it is also closed when garbage
    collected and at interpreter exit, which then waits for callbacks still running.
    """

    def __init__(
        self,
        *,
        model: Union[str, ModelCallable, None] = None,
        model_name: Optional[str] = None,
        models: Optional[Mapping[str, ModelCallable]] = None,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        workspace: Optional[PathLike] = None,
        transcripts: Union[PathLike, bool, None] = None,
        agents_dirs: Optional[Iterable[PathLike]] = None,
        trust_project_agents: Optional[bool] = None,
        scheduler_threads: Optional[int] = None,
        execution_threads: Optional[int] = None,
        max_queued: Optional[int] = None,
        max_parallel: Optional[int] = None,
        max_depth: Optional[int] = None,
        poll_interval: Optional[Seconds] = None,
        execution_timeout: Optional[Seconds] = None,
        queue_timeout: Optional[Seconds] = None,
        wait_timeout: Optional[Seconds] = None,
        shutdown_grace: Optional[Seconds] = None,
        tools: Iterable[Union[Callable[..., Any], Tool[Any]]] = (),
        on_event: Optional[EventCallable] = None,
        **settings: Any,
    ) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._native: Optional[NativeRuntime] = None
        self._closed = False
        self._running = 0  # calls into the native runtime in progress
        self._model: Optional[ModelCallable] = None
        self._model_name = model_name or "python"
        if callable(model):
            self._model = model
        elif model is not None:
            settings["model"] = model
        self._models: Dict[str, ModelCallable] = dict(models or {})
        for name, function in self._models.items():
            if not isinstance(name, str) or not name.strip() or not callable(function):
                raise InvalidInput(
                    f"`models` maps model names to callables; {name!r} is not a name with a "
                    "callable",
                    1,
                )
        self._loops = HostLoops()
        if transcripts is False:
            transcripts = "off"
        elif transcripts is True:
            transcripts = None
        settings.update(
            api_key=api_key,
            base_url=base_url,
            # Pinned now, although the native runtime is built later.
            workspace=os.fspath(workspace) if workspace is not None else os.getcwd(),
            transcripts=os.fspath(transcripts) if transcripts is not None else None,
            agents_dirs=[os.fspath(path) for path in agents_dirs]
            if agents_dirs is not None
            else None,
            trust_project_agents=trust_project_agents,
            scheduler_threads=scheduler_threads,
            execution_threads=execution_threads,
            max_queued=max_queued,
            max_parallel=max_parallel,
            max_depth=max_depth,
            poll_interval=_seconds(poll_interval),
            execution_timeout=_seconds(execution_timeout),
            queue_timeout=_seconds(queue_timeout),
            wait_timeout=_seconds(wait_timeout),
            shutdown_grace=_seconds(shutdown_grace),
        )
        self._settings_json = json.dumps(
            {key: value for key, value in settings.items() if value is not None}
        )
        validate_settings(self._settings_json)
        self._tools: List[Tool[Any]] = [as_tool(function) for function in tools]
        self._on_event = on_event
        _live.add(self)

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> "Runtime":
        """Builds the native runtime now (instead of at the first call) and returns self.

        Raises :class:`ConfigError` for a configuration that cannot work (no model, a
        missing workspace, a tool name taken twice).
        """
        self._enter()
        self._leave()
        return self

    @property
    def started(self) -> bool:
        """Whether the native runtime has been built."""
        return self._native is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Cancels every running task, waits for the calls in progress to return, and
        releases the runtime (waiting up to ``shutdown_grace`` for its jobs). Idempotent.
        Later calls raise :class:`Shutdown`.

        Not from inside one of this runtime's callbacks (that raises :class:`Error`).
        """
        with self._lock:
            if self._closed:
                return
            native = self._native
            if native is not None and native.called_back_here():
                raise Error("a runtime cannot be closed from inside one of its own callbacks")
            self._closed = True
            if native is not None:
                # Calls in progress return at once once their tasks are cancelled; one
                # that had not submitted yet is caught by the next round.
                while self._running:
                    native.cancel_all()
                    self._idle.wait(0.05)
        _live.discard(self)
        if native is not None:
            native.free()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            native = getattr(self, "_native", None)
            if native is not None and native.called_back_here():
                log.warning("a subtask runtime was dropped inside its own callback; not freed")
                return
            if hasattr(self, "_lock"):
                self.close()
        except Exception:  # pragma: no cover - never raise from __del__
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._native else "not started"
        return f"<subtask.Runtime {state}, {len(self._tools)} host tool(s)>"

    def _enter(self) -> NativeRuntime:
        """Marks a call into the native runtime in progress (building it the first time)."""
        with self._lock:
            if self._closed:
                raise Shutdown("this subtask runtime is closed; make a new Runtime", 6)
            if self._native is None:
                self._native = self._build()
            self._running += 1
            return self._native

    def _leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._closed:  # only `close` waits for it
                self._idle.notify_all()

    def _build(self) -> NativeRuntime:
        model: Optional[Tuple[str, Handler]] = None
        if self._model is not None:
            model = (self._model_name, self._model_handler(self._model, self._loops))
        models = [
            (name, self._model_handler(function, self._loops))
            for name, function in self._models.items()
        ]
        tools = [
            (
                tool.name,
                tool.description,
                json.dumps(tool.parameters),
                tool.read_only,
                self._tool_handler(tool, self._loops),
            )
            for tool in self._tools
        ]
        on_event = self._event_handler(self._on_event, self._loops) if self._on_event else None
        return NativeRuntime(self._settings_json, model, tools, on_event, models)

    # The handlers below never raise: an exception must not cross into the runtime.
    # They hold no reference to the Runtime, so dropping it frees it.

    @staticmethod
    def _model_handler(model: ModelCallable, loops: HostLoops) -> Handler:
        raw = is_raw_json(model)

        def handle(request_json: bytes) -> Tuple[int, str]:
            try:
                request = (
                    request_json.decode("utf-8", "replace") if raw else _json.loads(request_json)
                )
                return 0, _response_text(resolve(model(request), loops, current_cancel_check()))
            except BaseException as exception:  # noqa: BLE001 - reported to the run
                log.debug("the model callable raised", exc_info=True)
                return 1, f"the model callable raised {_describe_exception(exception)}"

        return handle

    @staticmethod
    def _tool_handler(tool: Tool[Any], loops: HostLoops) -> Handler:
        def handle(input_json: bytes) -> Tuple[int, str]:
            try:
                return 0, tool.invoke(
                    input_json.decode("utf-8", "replace"),
                    lambda value: resolve(value, loops, current_cancel_check()),
                )
            except BaseException as exception:  # noqa: BLE001 - reported to the model
                log.debug("the tool %s raised", tool.name, exc_info=True)
                return 1, _describe_exception(exception)

        return handle

    @staticmethod
    def _event_handler(on_event: EventCallable, loops: HostLoops) -> Callable[[bytes], None]:
        def handle(event_json: bytes) -> None:
            try:
                resolve(on_event(_json.loads(event_json)), loops)
            except BaseException:  # noqa: BLE001 - an observer must not break a run
                log.exception("the on_event callable raised; the event is skipped")

        return handle

    # --- tools --------------------------------------------------------------------------

    @overload
    def tool(self, func: Callable[..., R]) -> Tool[R]: ...

    @overload
    def tool(
        self,
        func: None = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        read_only: bool = False,
    ) -> Callable[[Callable[..., R]], Tool[R]]: ...

    def tool(
        self,
        func: Optional[Callable[..., R]] = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        read_only: bool = False,
    ) -> Union[Tool[R], Callable[[Callable[..., R]], Tool[R]]]:
        """Decorator: offers a function to this runtime's subagents as a tool (see
        :func:`subtask.tool` for the schema). Only before the runtime is built (its first
        call, or :meth:`start`); after that it raises :class:`Error`."""

        def add(func: Callable[..., R]) -> Tool[R]:
            tool = as_tool(func, name=name, description=description, read_only=read_only)
            with self._lock:
                if self._closed:
                    raise Shutdown("this subtask runtime is closed; make a new Runtime", 6)
                if self._native is not None:
                    raise Error(
                        f"cannot add the tool {tool.name!r}: tools must be added before the "
                        "runtime's first call (task, call, stats, ...) or start()"
                    )
                self._tools.append(tool)
            return tool

        if func is not None:
            return add(func)
        return add

    @property
    def tools(self) -> List[Tool[Any]]:
        """The host tools (a copy)."""
        with self._lock:
            return list(self._tools)

    # --- the task tool --------------------------------------------------------------------

    def call(self, arguments: Union[str, Mapping[str, Any]]) -> TaskOutput:
        """Runs a ``task`` tool call exactly as a model sends it: one task
        (``description``, ``prompt``, ``subagent_type`` and optional fields) or ``tasks``,
        as JSON text or a mapping. Blocks until every run it started has ended (releasing
        the GIL meanwhile) and returns all the results; ``output.text`` is what the model
        reads.

        Runs that fail, time out or are cancelled are results (see :class:`TaskResult`),
        not exceptions. Raises :class:`InvalidInput` when the call is refused before
        anything ran (the message names the field), :class:`Shutdown` after :meth:`close`.
        """
        return output_from_native(self._call(_json_text(arguments)))

    def _call(self, text: Union[str, bytes]) -> Dict[str, Any]:
        """Runs a ``task`` call given as JSON text; returns its output freshly parsed."""
        native = self._enter()
        try:
            output = native.task(text)
        finally:
            self._leave()
        parsed: Dict[str, Any] = _json.loads(output)
        return parsed

    async def acall(self, arguments: Union[str, Mapping[str, Any]]) -> TaskOutput:
        """:meth:`call`, awaitable: the call runs on a thread of its own, so the event loop
        is never blocked, and several awaits run at once (up to ``execution_threads``
        runs; the rest queue).

        Cancelling the awaiting task (``task.cancel()``, ``asyncio.wait_for``'s timeout, a
        ``TaskGroup`` failing) cancels its runs: their child processes are killed and
        their slots are free again before ``CancelledError`` reaches the awaiter. Async
        model, tool and event callables run on this loop while the call is in flight.
        """
        return output_from_native(await self._acall(_json_text(arguments)))

    async def _acall(self, text: Union[str, bytes]) -> Dict[str, Any]:
        """:meth:`acall` given JSON text; returns its output freshly parsed."""
        loop = asyncio.get_running_loop()
        native = self._enter()
        try:
            canceller = Canceller()
        except BaseException:
            self._leave()
            raise
        done: "asyncio.Future[bytes]" = loop.create_future()

        def settle(outcome: Callable[[], None]) -> None:
            if not done.done():
                outcome()

        def deliver(outcome: Callable[[], None]) -> None:
            try:
                loop.call_soon_threadsafe(settle, outcome)
            except RuntimeError:  # the loop is closed: nobody awaits the outcome any more
                pass

        def work() -> None:
            # Accounted for: the thread ends when the native call does (bounded by the
            # runtime's timeouts, at once after a cancel); the awaiter waits for it.
            try:
                result = native.task(text, canceller)
            except BaseException as error:  # noqa: BLE001 - handed to the awaiter
                failure = error
                deliver(lambda: done.set_exception(failure))
            else:
                deliver(lambda: done.set_result(result))
            finally:
                canceller.free()
                self._leave()

        self._loops.enter(loop)
        try:
            threading.Thread(target=work, name="subtask-acall", daemon=True).start()
        except BaseException:
            self._loops.leave(loop)
            canceller.free()
            self._leave()
            raise
        try:
            output = await asyncio.shield(done)
        except asyncio.CancelledError:
            canceller.cancel()
            # The runs end promptly once cancelled; wait so the slots are back (and the
            # children dead) when the cancellation reaches the awaiter. A second cancel
            # does not abandon them either.
            while not done.done():
                try:
                    await asyncio.shield(done)
                except asyncio.CancelledError:
                    continue
                except BaseException:  # noqa: BLE001 - the call's own outcome
                    break
            raise
        finally:
            self._loops.leave(loop)
        parsed: Dict[str, Any] = _json.loads(output)
        return parsed

    def task(
        self,
        prompt: str,
        subagent_type: str = "general-purpose",
        *,
        description: Optional[str] = None,
        model: Optional[str] = None,
        cwd: Optional[PathLike] = None,
        tools: Optional[Sequence[str]] = None,
        read_only: Optional[bool] = None,
        context: Optional[str] = None,
        files: Optional[Sequence[PathLike]] = None,
        output: Optional[str] = None,
        timeout_seconds: Optional[Seconds] = None,
        resume: Optional[str] = None,
        **fields: Any,
    ) -> TaskResult:
        """Runs one subagent and returns its result; blocks until it ends (releasing the
        GIL). The same order as :func:`subtask.task`: ``prompt`` (complete on its own),
        then ``subagent_type`` (``general-purpose`` by default, ``explore``, ``plan``,
        ``bash`` or a custom type).

        Optional, by keyword: ``description`` (3-5 words; default: the prompt's first
        words), ``model`` (another model for this run), ``cwd``, ``tools`` (a subset of the
        type's), ``read_only``, ``context``, ``files`` (included in the prompt),
        ``output`` (what a good answer looks like), ``timeout_seconds``, ``resume`` (a run
        id, to continue that conversation).

        A run that fails, times out or is cancelled returns a :class:`TaskResult` with
        that ``status`` and ``error``: check ``result.ok`` or call
        ``result.raise_for_status()``. Raises :class:`InvalidInput` for a refused call (the
        message names the field), :class:`Shutdown` after :meth:`close`.
        """
        arguments = _one_task(
            prompt,
            subagent_type,
            description,
            {
                "model": model,
                "cwd": cwd,
                "tools": tools,
                "read_only": read_only,
                "context": context,
                "files": files,
                "output": output,
                "timeout_seconds": timeout_seconds,
                "resume": resume,
                **fields,
            },
        )
        return _only_result(self._call(_json.dumps_arguments(arguments)))

    async def atask(
        self,
        prompt: str,
        subagent_type: str = "general-purpose",
        *,
        description: Optional[str] = None,
        model: Optional[str] = None,
        cwd: Optional[PathLike] = None,
        tools: Optional[Sequence[str]] = None,
        read_only: Optional[bool] = None,
        context: Optional[str] = None,
        files: Optional[Sequence[PathLike]] = None,
        output: Optional[str] = None,
        timeout_seconds: Optional[Seconds] = None,
        resume: Optional[str] = None,
        **fields: Any,
    ) -> TaskResult:
        """:meth:`task`, awaitable, never blocking the event loop; cancelling the awaiting
        task cancels the run (see :meth:`acall`)."""
        arguments = _one_task(
            prompt,
            subagent_type,
            description,
            {
                "model": model,
                "cwd": cwd,
                "tools": tools,
                "read_only": read_only,
                "context": context,
                "files": files,
                "output": output,
                "timeout_seconds": timeout_seconds,
                "resume": resume,
                **fields,
            },
        )
        return _only_result(await self._acall(_json.dumps_arguments(arguments)))

    def task_parallel(self, tasks: Sequence[Mapping[str, Any]]) -> List[TaskResult]:
        """Runs several independent tasks at once (one ``task`` call with ``tasks``) and
        returns their results in request order. Each task is a mapping of
        :meth:`task`'s fields (``prompt``, ``subagent_type``, ``description``, ...).

        At most ``max_parallel`` tasks (10 by default); ``execution_threads`` run at once,
        the rest wait for a slot. A bad task refuses the whole call (:class:`InvalidInput`)
        and runs nothing; runs that fail are results, as in :meth:`task`.
        """
        output = self._call(json.dumps(_many_tasks(tasks)))
        return [result_from_native(result) for result in output["results"]]

    async def atask_parallel(self, tasks: Sequence[Mapping[str, Any]]) -> List[TaskResult]:
        """:meth:`task_parallel`, awaitable; cancelling the awaiting task cancels every run
        (see :meth:`acall`)."""
        output = await self._acall(json.dumps(_many_tasks(tasks)))
        return [result_from_native(result) for result in output["results"]]

    def tool_definition(self, format: str = "openai") -> Dict[str, Any]:
        """The ``task`` tool's definition for a model: ``format`` ``"openai"``
        (``{"type": "function", "function": {...}}``), ``"anthropic"`` (``{"name",
        "description", "input_schema"}``) or ``"mcp"`` (a ``tools/list`` entry). Its
        description is written from this runtime's types, tools and limits."""
        if format not in _FORMATS:
            raise InvalidInput(f"unknown format {format!r}: use {', '.join(_FORMATS)}", 1)
        native = self._enter()
        try:
            return dict(_json.loads(native.tool_definition(format)))
        finally:
            self._leave()

    # --- the host's view --------------------------------------------------------------------

    def cancel(self, task_id: str) -> bool:
        """Cancels the live task ``task_id`` (the ``task`` of an event, or a run id);
        returns whether it was live. Its ``task`` call returns at once with status
        ``cancelled``."""
        native = self._enter()
        try:
            return native.cancel(task_id)
        finally:
            self._leave()

    def cancel_all(self) -> int:
        """Cancels every live task; returns how many."""
        native = self._enter()
        try:
            return native.cancel_all()
        finally:
            self._leave()

    def stats(self) -> Dict[str, int]:
        """The runtime's counters: ``queued``, ``running``, ``zombies`` (jobs still running
        after their task ended), ``live``, and totals ``submitted``, ``rejected``,
        ``completed``, ``failed``, ``cancelled``, ``timed_out``."""
        native = self._enter()
        try:
            return dict(_json.loads(native.stats()))
        finally:
            self._leave()


def _json_text(arguments: Union[str, Mapping[str, Any]]) -> str:
    """A ``task`` call's arguments as JSON text (text is taken as it is)."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _task_arguments(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """One task's fields as the ``task`` tool takes them (``None`` left out)."""
    return {key: _argument(key, value) for key, value in fields.items() if value is not None}


def _argument(key: str, value: Any) -> Any:
    """One field's value as JSON takes it (paths as strings, durations in seconds)."""
    if key == "timeout_seconds":
        return _seconds(value)
    if key == "cwd":
        return os.fspath(value)
    if key in ("files", "tools") and not isinstance(value, str):
        return [os.fspath(item) for item in value]
    return value


def _one_task(
    prompt: str, subagent_type: str, description: Optional[str], optional: Dict[str, Any]
) -> Dict[str, Any]:
    """The arguments of a one-task call: the three fields every task has, then the
    ``optional`` ones that are set."""
    model = optional["model"]
    if model is not None and not isinstance(model, str):
        raise InvalidInput(
            "`model` must be one model here; for a list of models use Runtime.call(), "
            "which returns one result per model",
            1,
        )
    if not isinstance(prompt, str) or not isinstance(subagent_type, str):
        raise InvalidInput("`prompt` and `subagent_type` must be strings", 1)
    arguments = {
        "prompt": prompt,
        "subagent_type": subagent_type,
        "description": _description(prompt) if description is None else description,
    }
    arguments.update(_task_arguments(optional))
    return arguments


def _many_tasks(tasks: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    if isinstance(tasks, Mapping) or isinstance(tasks, str):
        raise InvalidInput("`tasks` must be a list of tasks, not one task", 1)
    many = []
    for task in tasks:
        fields = dict(task)
        fields.setdefault("subagent_type", "general-purpose")
        if "description" not in fields and isinstance(fields.get("prompt"), str):
            fields["description"] = _description(fields["prompt"])
        many.append(_task_arguments(fields))
    return {"tasks": many}


def _only_result(output: Dict[str, Any]) -> TaskResult:
    """The one result of a parsed output (one task, one model: one run)."""
    results = output["results"]
    if len(results) != 1:  # pragma: no cover - a bug in the native layer
        raise Error(f"expected one result, got {len(results)}", 12)
    return result_from_native(results[0])


def _description(prompt: str) -> str:
    """The prompt's first words, as the ``task`` tool accepts a description."""
    description = " ".join(prompt.split()[:5])[:80]
    return description or "task"
