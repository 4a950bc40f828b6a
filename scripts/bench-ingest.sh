#!/usr/bin/env bash
# Ingest throughput, lanceflow next to pylance's write_dataset, on the same
# JSONL file (default: WordNet's ~117k synsets, else 100k synthetic rows).
# Needs: scripts/setup.sh; pip install pylance==14.0.2 for the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --quiet --bin lanceflow-bench
LANCEFLOW_BENCH="$CARGO_TARGET_DIR/debug/lanceflow-bench"
WORK="${LANCEFLOW_WORK:-out}"
mkdir -p "$WORK"
MAX_ROWS="${MAX_ROWS:-10000}"
REPEAT="${REPEAT:-5}"
INPUT="${1:-}"
if [ -z "$INPUT" ]; then
  INPUT="$WORK/bench-100k.jsonl"
  if [ ! -f "$INPUT" ]; then
    python3 - "$INPUT" <<'PY'
import json, random, sys
random.seed(7)
words = "vector index search lance fragment embedding query recall latency storage column arrow ray worker driver commit version".split()
with open(sys.argv[1], "w") as f:
    for i in range(100_000):
        text = " ".join(random.choice(words) for _ in range(random.randint(8, 40)))
        f.write(json.dumps({"doc_id": f"d{i}", "title": f"document {i}", "text": text, "n": i}) + "\n")
PY
  fi
fi
echo "input: $INPUT ($(wc -l < "$INPUT") rows), max rows per file $MAX_ROWS, $REPEAT runs, $(nproc) cores"
"$LANCEFLOW_BENCH" ingest "$INPUT" --max-rows-per-file "$MAX_ROWS" --repeat "$REPEAT"
if python3 -c "import lance" >/dev/null 2>&1; then
  python3 scripts/bench_pylance_ingest.py "$INPUT" "$MAX_ROWS" "$REPEAT"
else
  echo "pylance is not installed (pip install pylance==14.0.2): no reference figure"
fi
