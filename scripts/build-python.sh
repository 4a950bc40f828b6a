#!/usr/bin/env bash
# Build the lanceflow Python wheel (maturin, abi3: CPython 3.9+) and install
# it into this Python. Fast when nothing changed: cargo reuses the shared
# target dir of the CLI build (the dev profile optimises every dependency).
# The wheel is left in $LANCEFLOW_WHEEL_DIR for other nodes of a Ray cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if ! python3 -c "import maturin" >/dev/null 2>&1; then
  python3 -m pip install -q "maturin>=1.9,<2"
fi
rm -f "$LANCEFLOW_WHEEL_DIR"/lanceflow-*.whl
python3 -m maturin build -m crates/python/Cargo.toml -o "$LANCEFLOW_WHEEL_DIR" >&2
python3 -m pip install -q --force-reinstall --no-deps "$LANCEFLOW_WHEEL_DIR"/lanceflow-*.whl
echo "$(ls "$LANCEFLOW_WHEEL_DIR"/lanceflow-*.whl)"
