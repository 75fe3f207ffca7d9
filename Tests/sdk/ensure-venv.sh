#!/usr/bin/env bash
# Creates the virtual environment the SDK tests run in (.build/sdk-venv), once per
# requirements.txt; .ci/run calls it before the tests, and the tests call it too, so a plain
# `swift test` on a fresh machine installs the SDKs itself (PyPI must be reachable).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.build/sdk-venv"
stamp="$venv/.requirements"
want="$(cat "$root/Tests/sdk/requirements.txt")"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
exec 9>"$root/.build/sdk-venv.lock"
flock 9
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
# Made afresh: a folder left by another interpreter (pyenv's, Debian's) cannot be upgraded in place.
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/Tests/sdk/requirements.txt"
printf '%s' "$want" > "$stamp"
