#!/usr/bin/env bash
# Vector index benchmark: `lanceflow-bench vector` (IVF_PQ on 100k × 384 clustered
# unit vectors, 2 workers: build time, recall@10 at nprobes 10 / refine 5 against brute
# force, in-process and distributed search latency). With pylance 14.0.2 installed the
# bench runs it as a co-process on the same data, its search rounds alternating with
# lanceflow's; lance-ray 0.5.0, when installed, is measured afterwards
# (pip install lance-ray==0.5.0 pylance==14.0.2 "ray[data]").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --quiet --bin lanceflow-bench
LANCEFLOW_BENCH="$CARGO_TARGET_DIR/debug/lanceflow-bench"
WORK="${LANCEFLOW_WORK:-out}/bench-vector"
rm -rf "$WORK" && mkdir -p "$WORK"
"$LANCEFLOW_BENCH" --workers "${WORKERS:-2}" vector --scratch "$WORK" "$@"
DATA=$(ls -d "$WORK"/lanceflow-bench-vector-* | head -1)
if python3 -c "import lance_ray" 2>/dev/null; then
  python3 scripts/bench_pylance_vector.py "$DATA" --workers "${WORKERS:-2}" --ray-only
else
  echo "lance-ray is not installed: pip install lance-ray==0.5.0 for its reference figures" >&2
fi
