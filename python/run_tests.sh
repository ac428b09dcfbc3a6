#!/usr/bin/env bash
# Builds the Python package from this checkout into .venv (created if missing) and runs its
# tests. Needs python3 (3.9+) and cargo on PATH; PyPI for maturin, cffi, pytest and mcp (the
# official MCP SDK, for test_mcp.py: Python 3.10+ only, skipped on 3.9).
set -euo pipefail
cd "$(dirname "$0")/.."

# Never let maturin try to download a Rust toolchain: cargo must already be there.
export MATURIN_NO_INSTALL_RUST=1
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
# `pip install -e .` leaves the generated cffi module in the source tree, and a later
# `pip install .` then fails ("overwrote an existing tracked file"): start clean.
rm -rf python/subtask/_native
echo "== pip install . pytest mcp (builds the cdylib in release mode)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check . pytest "mcp; python_version >= '3.10'"
echo "== pytest python/tests"
# From the repository root, `import subtask` finds the installed package, not python/.
.venv/bin/python -m pytest -q -p no:cacheprovider python/tests "$@"
echo "== examples/python_agent.py (offline, scripted)"
env -u OPENAI_API_KEY .venv/bin/python examples/python_agent.py > /dev/null
echo "python checks passed"
