"""What the Python binding adds to a `task` call.

    python python/bench.py              # runs `cargo bench --features mimalloc --bench ffi`
    python python/bench.py --no-rust    # Python figures only
    python python/bench.py --json       # one JSON object on stdout

The task is trivial: one model turn, answered at once by a Python model callable that
returns a prebuilt Chat Completions body. Measured, per call (medians and p99):

- python: ``Runtime.task()`` end to end, the model callable taking and returning dicts;
- raw: the same with a :func:`subtask.raw_json` model callable (JSON text in and out);
- callable: time inside the user's model callable (subtracted: it is the host's own work);
- floor: ``lib.subtask_task`` with a minimal cffi callback that sets a fixed reply (no
  JSON parsing, no result objects): crossing into C and being called back, nothing else;
- rust c_abi: the same call from Rust through the C ABI with an ``extern "C"`` callback
  (``benches/ffi.rs``, a separate process), and rust direct: ``TaskTool::call_str``.

Each path is measured in two regimes, as ``benches/ffi.rs`` measures Rust: back to back
(calls in a row, the runtime's threads still warm) and 1 ms apart (idle time before each
call, as a host works between two ``task`` calls: the threads park, the next call wakes
them). added by Python = python - callable - rust c_abi in the same regime, the issue's
figure; the floor minus rust c_abi is what cffi's call and callback alone cost, and the
"conversion" is the median over turns (1 ms apart, the paths in turn) of python -
callable - floor: the arguments, the request and reply, the result objects, the wrappers.
JSON is parsed by orjson when it is installed (``pip install "subtask-agents[fast]"``),
else the standard library; ``SUBTASK_PURE_JSON=1`` compares the two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

# Run as a script, this file's directory (python/, the package's sources without the
# native module) comes first on sys.path: import the installed package instead.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import subtask  # noqa: E402
from subtask import _json as subtask_json  # noqa: E402
from subtask._ffi import ffi, lib  # noqa: E402

ARGS = {
    "description": "Answer",
    "prompt": "What is six times seven?",
    "subagent_type": "general-purpose",
}
RESPONSE: Dict[str, Any] = {
    "choices": [{"message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}]
}
WARMUP = 300
#: Calls of each path back to back; a third as many 1 ms apart (`--samples`).
SAMPLES = 3000
#: Idle time before each spaced call, as `GAP` in benches/ffi.rs.
GAP = 0.001


def percentile(samples: List[float], percent: float) -> float:
    ordered = sorted(samples)
    return ordered[round((len(ordered) - 1) * percent / 100)]


def paired_median_us(figures: Dict[str, List[float]], path: str, *minus: str) -> float:
    """The median over calls of ``path``'s time minus the ``minus`` paths' times in the same
    turn, in microseconds: steadier than a difference of medians on a noisy machine."""
    differences = [
        sample - sum(figures[other][i] for other in minus) for i, sample in enumerate(figures[path])
    ]
    return statistics.median(differences) * 1e6


def rust_figures() -> Optional[Dict[str, Any]]:
    cargo = shutil.which("cargo")
    if cargo is None:
        print("(cargo not found: no Rust figures)", file=sys.stderr)
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(
        "running cargo bench --features mimalloc --bench ffi (compiles it the first time)...",
        file=sys.stderr,
    )
    done = subprocess.run(
        # The wheel's features (pyproject.toml), so both sides use the same allocator.
        [cargo, "bench", "--quiet", "--features", "mimalloc", "--bench", "ffi", "--", "--json"],
        cwd=root,
        stdout=subprocess.PIPE,
        check=True,
    )
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def python_figures(workspace: str, samples: int) -> Dict[str, List[float]]:
    warmup = min(WARMUP, samples)
    spaced_samples = max(1, samples // 3)
    inside: List[float] = []

    def model(request: Dict[str, Any]) -> Dict[str, Any]:
        started = time.perf_counter()
        reply = RESPONSE
        inside.append(time.perf_counter() - started)
        return reply

    reply_bytes = json.dumps(RESPONSE).encode()

    def minimal(user_data: Any, request_json: Any, reply: Any) -> int:
        lib.subtask_reply_set(reply, reply_bytes)
        return 0

    callback = ffi.callback("subtask_model_callback", minimal, error=-1)
    settings = json.dumps({"transcripts": "off", "workspace": workspace}).encode()
    config = ffi.new("subtask_config **")
    assert lib.subtask_config_new(settings, config) == ffi.NULL
    assert lib.subtask_config_set_model(config[0], b"bench", callback, ffi.NULL) == ffi.NULL
    floor_runtime = ffi.new("subtask_runtime **")
    assert lib.subtask_runtime_new(config[0], floor_runtime) == ffi.NULL
    lib.subtask_config_free(config[0])
    args_bytes = json.dumps(ARGS).encode()
    out = ffi.new("char **")

    def floor() -> None:
        error = lib.subtask_task(floor_runtime[0], args_bytes, out)
        assert error == ffi.NULL
        lib.subtask_string_free(out[0])

    response_text = json.dumps(RESPONSE)

    @subtask.raw_json
    def raw_model(request_json: str) -> str:
        started = time.perf_counter()
        reply = response_text
        inside_raw.append(time.perf_counter() - started)
        return reply

    inside_raw: List[float] = []
    raw_runtime = subtask.Runtime(model=raw_model, transcripts=False, workspace=workspace)

    def raw_task() -> None:
        assert raw_runtime.task(
            ARGS["prompt"], ARGS["subagent_type"], description=ARGS["description"]
        ).ok

    figures: Dict[str, List[float]] = {}
    with subtask.Runtime(model=model, transcripts=False, workspace=workspace) as runtime:

        def task() -> None:
            assert runtime.task(
                ARGS["prompt"], ARGS["subagent_type"], description=ARGS["description"]
            ).ok

        calls = {"python": task, "raw": raw_task, "floor": floor}
        inside_of = {"python": inside, "raw": inside_raw}
        for _ in range(warmup):
            for call in calls.values():
                call()
        # Back to back, each path alone, as `benches/ffi.rs` measures Rust's `c_abi`.
        for name, call in calls.items():
            for _ in range(warmup):
                call()
            for times in inside_of.values():
                times.clear()
            figures[name] = measure(call, samples, gap=0.0)
            if name in inside_of:
                figures[name + "_callable"] = list(inside_of[name])
        # GAP apart, as Rust's `c_abi_spaced`: a host does other work between two `task`
        # calls, and the runtime's threads park meanwhile. One call of each path in turn,
        # so the i-th calls of two paths can be subtracted pairwise.
        for times in inside_of.values():
            times.clear()
        for name in calls:
            figures[name + "_spaced"] = []
        for _ in range(spaced_samples):
            for name, call in calls.items():
                figures[name + "_spaced"] += measure(call, 1, gap=GAP)
        figures["python_spaced_callable"] = list(inside)
        figures["raw_spaced_callable"] = list(inside_raw)
    raw_runtime.close()
    lib.subtask_runtime_free(floor_runtime[0])
    return figures


def measure(call: Callable[[], None], samples: int, gap: float) -> List[float]:
    """``samples`` timings of ``call``, each after ``gap`` seconds of idle time (not
    timed: part of the workload, as in ``benches/ffi.rs``)."""
    times = []
    for _ in range(samples):
        if gap:
            time.sleep(gap)
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-rust", action="store_true", help="skip cargo bench --bench ffi")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--samples",
        type=int,
        default=SAMPLES,
        help=f"calls of each path back to back (default {SAMPLES}); a third as many spaced",
    )
    options = parser.parse_args()

    rust = None if options.no_rust else rust_figures()
    print("measuring the Python side...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as workspace:
        figures = python_figures(workspace, options.samples)
    us = {
        name: {"p50": percentile(s, 50) * 1e6, "p99": percentile(s, 99) * 1e6}
        for name, s in figures.items()
    }
    report: Dict[str, Any] = {
        "samples": len(figures["python"]),
        "spaced_samples": len(figures["python_spaced"]),
        "python_us": us,
        "json": "orjson" if subtask_json.FAST else "json (standard library)",
        # Paired: the same turn's floor call (and time inside the callable) subtracted.
        "conversion_spaced_p50_us": paired_median_us(
            figures, "python_spaced", "python_spaced_callable", "floor_spaced"
        ),
        "raw_conversion_spaced_p50_us": paired_median_us(
            figures, "raw_spaced", "raw_spaced_callable", "floor_spaced"
        ),
    }
    if rust is not None:
        report["rust_us"] = rust
        for regime, suffix, reference in (
            ("back_to_back", "", rust["c_abi"]["p50_us"]),
            ("spaced", "_spaced", rust["c_abi_spaced"]["p50_us"]),
        ):
            report[regime] = {
                # What the issue calls "added by Python": Python's call minus the same call
                # from Rust through the C ABI, the user's own callable left out.
                "added_p50_us": added(us, "python" + suffix, reference),
                "raw_added_p50_us": added(us, "raw" + suffix, reference),
                # The floor: cffi's call and callback with no Python work.
                "crossing_p50_us": us["floor" + suffix]["p50"] - reference,
            }
    if options.json:
        print(json.dumps(report))
        return

    print(
        f"a trivial task (one model turn answered at once), python {sys.version.split()[0]}, "
        f"JSON by {report['json']}; back to back: {report['samples']} calls of each path in a row; "
        f"1 ms apart: {report['spaced_samples']} calls of each path in turn, each after 1 ms idle"
    )
    print("| path | back to back p50 | p99 | 1 ms apart p50 | p99 |\n|---|---|---|---|---|")
    rows = [
        ("Python: Runtime.task(), model callable on dicts", "python", "python_spaced"),
        ("  of which inside the callable", "python_callable", "python_spaced_callable"),
        ("Python: Runtime.task(), @subtask.raw_json callable", "raw", "raw_spaced"),
        ("  of which inside the callable", "raw_callable", "raw_spaced_callable"),
        ("Python: lib.subtask_task, minimal cffi callback", "floor", "floor_spaced"),
    ]
    cells = [(label, us[back], us[spaced]) for label, back, spaced in rows]
    if rust is not None:
        cells.append(
            (
                'C ABI from Rust: subtask_task, extern "C" callback',
                {"p50": rust["c_abi"]["p50_us"], "p99": rust["c_abi"]["p99_us"]},
                {"p50": rust["c_abi_spaced"]["p50_us"], "p99": rust["c_abi_spaced"]["p99_us"]},
            )
        )
    for label, back, spaced in cells:
        print(
            f"| {label} | {back['p50']:.1f} µs | {back['p99']:.1f} µs "
            f"| {spaced['p50']:.1f} µs | {spaced['p99']:.1f} µs |"
        )
    if rust is not None:
        direct = rust["direct"]
        print(
            f"| Rust: TaskTool::call_str, FunctionModel | {direct['p50_us']:.1f} µs "
            f"| {direct['p99_us']:.1f} µs | | |"
        )
        for regime, label in (("back_to_back", "back to back"), ("spaced", "1 ms apart")):
            figure = report[regime]
            print(
                f"added by Python, {label} (p50 of Python - callable - C ABI from Rust): "
                f"{figure['added_p50_us']:.1f} µs with dicts, {figure['raw_added_p50_us']:.1f} µs "
                f"with raw JSON; the cffi floor {figure['crossing_p50_us']:.1f} µs; "
                "target <= 20 µs"
            )
    print(
        f"conversion, 1 ms apart (median over turns of Python - callable - floor): "
        f"{report['conversion_spaced_p50_us']:.1f} µs with dicts, "
        f"{report['raw_conversion_spaced_p50_us']:.1f} µs with raw JSON (arguments, the "
        "request and reply, the result, the wrappers)"
    )
    rust_note = "Rust runs in another process: ~±15 µs run to run on a 2-vCPU VM; " if rust else ""
    print(
        f"({rust_note}stdev of Python back to back: "
        f"{statistics.pstdev(figures['python']) * 1e6:.0f} µs)"
    )


def added(us: Dict[str, Dict[str, float]], path: str, reference_p50: float) -> float:
    """``path``'s p50 minus the time inside its callable and the reference's p50."""
    return us[path]["p50"] - us[path + "_callable"]["p50"] - reference_p50


if __name__ == "__main__":
    main()
