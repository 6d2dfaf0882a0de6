#!/usr/bin/env bash
# Builds the tarjama Python package into python/.venv and runs its tests.
#   python/run-tests.sh            # all tests (the Ray ones skip without ray[data])
#   python/run-tests.sh --ray      # also installs ray[data] first (from PyPI)
#   python/run-tests.sh -m 'not ray' -x   # other arguments go to pytest
# TARJAMA_VENV chooses another virtual environment (default: python/.venv).
# Needs a Rust toolchain, python3 (>= 3.9) with venv, and pip access to PyPI.
# The extension and the CLI the tests compare with are built in
# $CARGO_TARGET_DIR (default: python/target).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
with_ray=0
if [[ "${1:-}" == "--ray" ]]; then
    with_ray=1
    shift
fi
venv="${TARJAMA_VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade "maturin>=1.5,<2" pytest
if [[ $with_ray == 1 ]]; then
    "$venv/bin/python" -m pip install --quiet "ray[data]>=2.9"
fi
# The CLI (for the comparisons), then the package (release build) into the venv.
cargo build --release --quiet --manifest-path "$here/../Cargo.toml"
export TARJAMA_CLI="$CARGO_TARGET_DIR/release/tarjama"
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    "$venv/bin/maturin" develop --release --quiet --manifest-path "$here/Cargo.toml"
exec "$venv/bin/python" -m pytest -q "$@"
