#!/usr/bin/env bash
# Creates (or reuses) the Python venv the interop tests run their peers in.
#
#   tests/interop/setup-venv.sh [TARGET_DIR]
#
# TARGET_DIR defaults to $CARGO_TARGET_DIR, else <checkout>/target. The venv is
# TARGET_DIR/interop-venv; a stamp holding the hash of requirements.txt (and of the
# python used) makes a second run a no-op. A lock (flock) serialises concurrent runs.
# Prints the venv's python path as its last stdout line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${1:-${CARGO_TARGET_DIR:-$root/target}}"
python="${PYTHON:-python3}"
req="$here/requirements.txt"
venv="$target/interop-venv"
stamp="$venv/.requirements.sha256"

mkdir -p "$target"
exec 9>"$target/interop-venv.lock"
flock 9

want="$( (sha256sum <"$req"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

echo "setting up $venv from $req" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
"$venv/bin/python" -c 'import grpc, opentelemetry.sdk, opentelemetry.proto, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http' >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
