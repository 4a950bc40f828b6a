#!/usr/bin/env bash
# Maintenance benchmark: `lanceflow-bench maintain` (100k × 384 clustered vectors
# in 40 fragments, 10% appended after an IVF_PQ build: optimise vs full rebuild,
# compaction, search p50 after each step), then the same compaction with pylance
# and lance-ray 0.5.0 on a copy of the dataset as it was before compaction.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --quiet --bin lanceflow-bench
LANCEFLOW_BENCH="$CARGO_TARGET_DIR/debug/lanceflow-bench"
WORK="${LANCEFLOW_WORK:-out}/bench-maintain"
"$LANCEFLOW_BENCH" -q --workers "${WORKERS:-2}" maintain --scratch "$WORK" "$@"
python3 scripts/bench_compact_reference.py "$WORK/before-compaction.lance" \
  --workers "${WORKERS:-2}" 2>/dev/null
