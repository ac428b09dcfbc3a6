"""What the Python binding adds to a `task` call.

    python python/bench.py              # runs `cargo bench --features mimalloc --bench ffi`
    python python/bench.py --no-rust    # Python figures only
    python python/bench.py --json       # one JSON object on stdout

The task is trivial: one model turn, answered at once by a Python model callable that
returns a prebuilt Chat Completions body. Measured, per call (medians and p99):

- python: ``Runtime.task()`` end to end, the model callable taking and returning dicts;
- raw: the same with a :func:`subtask.raw_json` model callable (JSON text in and out);
- callable: time inside the user's model callable (subtracted: it is the host's own work);
- cffi floor: ``lib.subtask_task`` with a minimal cffi callback that sets a fixed reply
  (no JSON parsing, no dataclasses): the cost of crossing into C and being called back;
- rust c_abi: the same call from Rust through the C ABI with an ``extern "C"`` callback
  (``benches/ffi.rs``, a separate process).

added by Python = python - callable - rust c_abi, the issue's figure; it is also given
against Rust calls made 1 ms apart (``c_abi_spaced``), which like the Python paths' calls
find the runtime's threads parked and pay for waking them. It is made of:
"crossing" = the floor measured alone - rust c_abi; the "slowdown" of the native side when
Python works between calls = the floor measured in turn with the Python paths - the floor
alone; and "conversion" = the median over turns of python - callable - floor (the three
Python paths run one call each in turn: parsing the ~9 KB request the callable receives as
a dict, writing its reply, the arguments, the TaskResult and the wrappers). JSON is parsed
by orjson when it is installed (``pip install "subtask-agents[fast]"``), else the standard
library; ``SUBTASK_PURE_JSON=1`` compares the two.
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
from typing import Any, Dict, List, Optional

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
SAMPLES = 3000


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


def python_figures(workspace: str) -> Dict[str, List[float]]:
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

    figures: Dict[str, List[float]] = {
        "python": [],
        "callable": [],
        "raw": [],
        "raw_callable": [],
        "floor": [],
        "floor_alone": [],
    }
    with subtask.Runtime(model=model, transcripts=False, workspace=workspace) as runtime:

        def task() -> None:
            assert runtime.task(
                ARGS["prompt"], ARGS["subagent_type"], description=ARGS["description"]
            ).ok

        calls = {"python": task, "raw": raw_task, "floor": floor}
        for _ in range(WARMUP):
            for call in calls.values():
                call()
        # The floor alone first: the crossing without Python work between calls.
        for _ in range(SAMPLES):
            started = time.perf_counter()
            floor()
            figures["floor_alone"].append(time.perf_counter() - started)
        inside.clear()
        inside_raw.clear()
        # One call of each path in turn, so every figure sees the same spells of the VM and
        # the i-th samples of two paths can be subtracted pairwise.
        for _ in range(SAMPLES):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                figures[name].append(time.perf_counter() - started)
        figures["callable"] = list(inside)
        figures["raw_callable"] = list(inside_raw)
    raw_runtime.close()
    lib.subtask_runtime_free(floor_runtime[0])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-rust", action="store_true", help="skip cargo bench --bench ffi")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args()

    rust = None if options.no_rust else rust_figures()
    print("measuring the Python side...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as workspace:
        figures = python_figures(workspace)
    us = {
        name: {"p50": percentile(s, 50) * 1e6, "p99": percentile(s, 99) * 1e6}
        for name, s in figures.items()
    }
    report: Dict[str, Any] = {
        "samples": len(figures["python"]),
        "python_us": us,
        "json": "orjson" if subtask_json.FAST else "json (standard library)",
        # Paired: the same turn's floor call (and time inside the callable) subtracted.
        "conversion_p50_us": paired_median_us(figures, "python", "callable", "floor"),
        "raw_conversion_p50_us": paired_median_us(figures, "raw", "raw_callable", "floor"),
    }
    # What Python's work between calls costs the Rust side (cold caches): the floor in turn
    # with the Python paths against the floor alone.
    report["slowdown_p50_us"] = us["floor"]["p50"] - us["floor_alone"]["p50"]
    if rust is not None:
        rust_p50 = rust["c_abi"]["p50_us"]
        report["rust_us"] = rust
        report["crossing_p50_us"] = us["floor_alone"]["p50"] - rust_p50
        report["binding_overhead_p50_us"] = us["python"]["p50"] - us["callable"]["p50"] - rust_p50
        report["raw_json_overhead_p50_us"] = us["raw"]["p50"] - us["raw_callable"]["p50"] - rust_p50
        # Against Rust calls 1 ms apart: like the Python paths' calls (each follows the
        # other paths' calls), they find the pools' threads parked.
        spaced_p50 = rust["c_abi_spaced"]["p50_us"]
        report["overhead_vs_spaced_p50_us"] = (
            us["python"]["p50"] - us["callable"]["p50"] - spaced_p50
        )
        report["raw_overhead_vs_spaced_p50_us"] = (
            us["raw"]["p50"] - us["raw_callable"]["p50"] - spaced_p50
        )
    if options.json:
        print(json.dumps(report))
        return

    print(
        f"a trivial task (one model turn answered at once), {report['samples']} calls of each "
        f"path in turn, python {sys.version.split()[0]}, JSON by {report['json']}"
    )
    print("| path | p50 | p99 |\n|---|---|---|")
    rows = [
        ("Runtime.task(), Python model callable", us["python"]),
        ("  of which inside the callable", us["callable"]),
        ("Runtime.task(), @subtask.raw_json model callable", us["raw"]),
        ("  of which inside the callable", us["raw_callable"]),
        ("lib.subtask_task, minimal cffi callback (no JSON), in turn", us["floor"]),
        ("the same, alone (no Python work between calls)", us["floor_alone"]),
    ]
    if rust is not None:
        rows += [
            ('subtask_task from Rust, extern "C" callback', rust["c_abi"]),
            ("the same, 1 ms apart (the pools' threads parked)", rust["c_abi_spaced"]),
            ("TaskTool::call_str from Rust (no C ABI)", rust["direct"]),
        ]
    for name, figure in rows:
        p50 = figure.get("p50", figure.get("p50_us"))
        p99 = figure.get("p99", figure.get("p99_us"))
        print(f"| {name} | {p50:.1f} µs | {p99:.1f} µs |")
    if rust is not None:
        print(
            f"added by Python (p50 of python - callable - Rust C ABI): "
            f"{report['binding_overhead_p50_us']:.1f} µs with dicts, "
            f"{report['raw_json_overhead_p50_us']:.1f} µs with raw JSON; target <= 20 µs. "
            f"Of it: crossing {report['crossing_p50_us']:.1f} µs (floor alone - Rust: the "
            "call into C, the GIL taken on a Rust thread for the callback)"
        )
        print(
            f"against Rust calls 1 ms apart (threads parked between calls, as between the "
            f"Python paths' calls): {report['overhead_vs_spaced_p50_us']:.1f} µs with dicts, "
            f"{report['raw_overhead_vs_spaced_p50_us']:.1f} µs with raw JSON"
        )
    print(
        f"slowdown of the native side between Python calls (floor in turn - floor alone): "
        f"{report['slowdown_p50_us']:.1f} µs; conversion (median over turns of python - "
        f"callable - floor): {report['conversion_p50_us']:.1f} µs with dicts, "
        f"{report['raw_conversion_p50_us']:.1f} µs with raw JSON (arguments, the request and "
        "reply, the TaskResult, the wrappers)"
    )
    print(
        f"(Rust runs in another process: ~±15 µs run to run on a 2-vCPU VM; stdev of "
        f"python: {statistics.pstdev(figures['python']) * 1e6:.0f} µs)"
    )


if __name__ == "__main__":
    main()
