#!/usr/bin/env bash
# Builds the Python package's wheel with maturin (one release build of the cdylib), installs
# it into a fresh venv whose PATH has no cargo or rustc, and runs the Python tests, the
# example and the type and lint checks against the installed wheel.
#
# Needs python3 (3.9+) and cargo on PATH, and PyPI for maturin, cffi, pytest, mypy, ruff,
# mcp (the official MCP SDK, Python 3.10+) and the frameworks of the optional extras
# (openai-agents, langchain-core, and langgraph for its agent loop; orjson for `fast`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Never let maturin try to download a Rust toolchain: cargo must already be there.
export MATURIN_NO_INSTALL_RUST=1
PYTHON=${PYTHON:-python3}
TOOLS=.venv           # maturin, mypy, ruff (kept between runs)
WHEEL_VENV=.venv-wheel # made fresh every run, from the wheel alone
TARGET=${CARGO_TARGET_DIR:-target}

if [ ! -x "$TOOLS/bin/python" ]; then
    echo "== creating $TOOLS (build and lint tools)"
    "$PYTHON" -m venv "$TOOLS"
fi
"$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9,<2" "mypy>=1.10" "ruff>=0.5" orjson \
    "openai-agents>=0.2" "langchain-core>=0.3" pytest

echo "== ruff check, ruff format --check"
"$TOOLS/bin/ruff" check python/subtask python/tests python/bench.py examples/python_agent.py
"$TOOLS/bin/ruff" format --check python/subtask python/tests python/bench.py examples/python_agent.py
echo "== mypy --strict (python/subtask)"
"$TOOLS/bin/mypy"

# A source-tree `pip install -e .` leaves the generated cffi module here; keep it out of
# the wheel's build.
rm -rf python/subtask/_native
WHEELS="$TARGET/wheels"
rm -rf "$WHEELS"
echo "== maturin build --release (the wheel)"
"$TOOLS/bin/maturin" build --release --quiet --out "$WHEELS"
wheel=$(ls "$WHEELS"/subtask_agents-*.whl)

echo "== fresh venv, PATH without cargo or rustc: pip install $(basename "$wheel")"
rm -rf "$WHEEL_VENV"
"$PYTHON" -m venv "$WHEEL_VENV"
WHEEL_PY=$(cd "$WHEEL_VENV" && pwd)/bin/python
NO_RUST_PATH=$(cd "$WHEEL_VENV" && pwd)/bin:/usr/bin:/bin
env PATH="$NO_RUST_PATH" "$WHEEL_PY" -c \
    'import shutil, sys; sys.exit("cargo is reachable" if shutil.which("cargo") or shutil.which("rustc") else 0)'
env PATH="$NO_RUST_PATH" "$WHEEL_PY" -m pip install --quiet --disable-pip-version-check \
    "$wheel[openai-agents,langchain,fast]" pytest langgraph "mcp; python_version >= '3.10'"

echo "== pytest python/tests (against the installed wheel)"
# From the repository root, `import subtask` finds the installed package, not python/.
env PATH="$NO_RUST_PATH" SUBTASK_TEST_EXPECT_ORJSON=1 "$WHEEL_PY" -m pytest -q -p no:cacheprovider \
    python/tests "$@"
echo "== python/bench.py (a few calls: it runs; figures come from a full run)"
env PATH="$NO_RUST_PATH" "$WHEEL_PY" python/bench.py --no-rust --samples 30 > /dev/null
echo "== examples/python_agent.py (offline, scripted)"
env -u OPENAI_API_KEY PATH="$NO_RUST_PATH" "$WHEEL_PY" examples/python_agent.py > /dev/null
echo "python checks passed"
