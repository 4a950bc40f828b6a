#!/usr/bin/env bash
# The main job on the embedded default (local executor, local disk):
# WordNet → JSONL → Lance dataset → info, then a distributed vector index and
# searches. Until the embedding stage lands, the vectors are a generated
# stand-in (clustered 384-d unit vectors, the shape of MiniLM embeddings) in
# their own dataset. Later stages (embed, FTS, hybrid) extend this same script.
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

# Vector index and search (stand-in vectors until `lanceflow embed` exists).
"$LANCEFLOW" generate vectors --out "$WORK/vectors.parquet" --rows 20000 --dim 384 --clusters 200
"$LANCEFLOW" ingest "$WORK/vectors.parquet" --to "$WORK/vectors.lance" --mode overwrite --max-rows-per-file 5000
"$LANCEFLOW" index vector "$WORK/vectors.lance" --column vector --type IVF_SQ --metric cosine
echo "nearest neighbours of row 7, in-process:"
"$LANCEFLOW" search vector "$WORK/vectors.lance" --query-row 7 -k 5 --nprobes 10 --columns id,category
echo "the same search, distributed by index-segment ownership:"
"$LANCEFLOW" search vector "$WORK/vectors.lance" --query-row 7 -k 5 --nprobes 10 --columns id,category --distributed
