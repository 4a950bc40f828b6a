#!/usr/bin/env bash
# The main job on the embedded default (local executor, local disk):
# WordNet → JSONL → Lance dataset → info. Later stages (embed, index, search)
# extend this same script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LANCEFLOW="$CARGO_TARGET_DIR/debug/lanceflow"
WORK="${LANCEFLOW_WORK:-out}"
mkdir -p "$WORK"

if [ -f /usr/share/wordnet/data.noun ]; then
  "$LANCEFLOW" convert wordnet --out "$WORK/wordnet.jsonl"
  INPUT="$WORK/wordnet.jsonl"
else
  echo "demo: WordNet is not installed (apt-get install wordnet-base); using the bundled sample" >&2
  INPUT="fixtures/wordnet-sample.jsonl"
fi

"$LANCEFLOW" ingest "$INPUT" --to "$WORK/wordnet.lance" --mode overwrite --max-rows-per-file 20000
"$LANCEFLOW" info "$WORK/wordnet.lance"
