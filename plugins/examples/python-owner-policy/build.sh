#!/usr/bin/env bash
# Build the Python owner policy plugin (app.py) into a WebAssembly component
# with componentize-py, against world `policy-plugin` of the repository's
# wit/ directory.
#
#   build.sh [OUT]
#
# OUT defaults to target/python_owner_policy.wasm beside this script.
# Needs componentize-py on PATH (pip install -r requirements.txt); set
# COMPONENTIZE_PY to use another executable. STUB_WASI=1 builds a component
# that imports no WASI interface at all (every WASI call traps instead).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$(cd "$here/../../.." && pwd)/wit"
out="${1:-$here/target/python_owner_policy.wasm}"
componentize_py="${COMPONENTIZE_PY:-componentize-py}"
# `python3 -m pip install` puts the command beside python3's scripts, which
# may not be on PATH yet (pyenv shims need a rehash): look there too.
if ! command -v "$componentize_py" >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
    scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
    if [ -n "$scripts" ] && [ -x "$scripts/componentize-py" ]; then
        componentize_py="$scripts/componentize-py"
    fi
fi
expected_version="$(sed -n 's/^componentize-py==//p' "$here/requirements.txt")"

if ! command -v "$componentize_py" >/dev/null 2>&1; then
    echo "build.sh: componentize-py not found; install it with:" >&2
    echo "    pip install -r $here/requirements.txt" >&2
    exit 1
fi

version="$("$componentize_py" --version | awk '{print $2}')"
if [ "$version" != "$expected_version" ]; then
    echo "build.sh: warning: componentize-py $version, requirements.txt pins $expected_version" >&2
fi

if [ ! -f "$wit/mlb-plugins.wit" ]; then
    echo "build.sh: no WIT package at $wit/mlb-plugins.wit" >&2
    exit 1
fi

# OUT relative to the caller's directory, as usual for a command argument.
case "$out" in
    /*) ;;
    *) out="$PWD/$out" ;;
esac
mkdir -p "$(dirname "$out")"

# Build from a copy of app.py so that nothing (such as __pycache__) is left
# in the source folder and no other file of it ends up in the component.
stage="$(mktemp -d)"
trap 'rm -rf "$stage" "$out.partial"' EXIT
cp "$here/app.py" "$stage/"

stub=()
if [ "${STUB_WASI:-0}" = 1 ]; then
    stub=(--stub-wasi)
fi

(
    cd "$stage"
    "$componentize_py" --quiet -d "$wit" -w policy-plugin \
        componentize app -p "$stage" ${stub[@]+"${stub[@]}"} -o "$out.partial"
)
mv "$out.partial" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
