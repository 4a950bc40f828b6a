#!/usr/bin/env bash
# Full-text and hybrid benchmark: `lanceflow-bench text` on a copy of the demo
# dataset (run scripts/demo.sh first; LANCEFLOW_DEMO_SAMPLE=0 for all of WordNet):
# FTS build time with 2 workers, full-text / vector / hybrid query latency; then the
# same FTS build with pylance and lance-ray 0.5.0 when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --quiet --bin lanceflow-bench
LANCEFLOW_BENCH="$CARGO_TARGET_DIR/debug/lanceflow-bench"
DATA="${1:-${LANCEFLOW_WORK:-out}/wordnet.lance}"
WORK="${LANCEFLOW_WORK:-out}/bench-text"
rm -rf "$WORK" && mkdir -p "$WORK"
"$LANCEFLOW_BENCH" -q --workers "${WORKERS:-2}" text "$DATA" --scratch "$WORK"
python3 scripts/bench_fts_reference.py "$DATA" --workers "${WORKERS:-2}" 2>/dev/null
