#!/usr/bin/env bash
# The main job on the embedded default (local executor, local disk):
# WordNet → JSONL → Lance dataset → info → embeddings → distributed vector
# index → full-text indexes → vector, full-text and hybrid searches →
# maintenance: append a batch, embed it, optimise the indexes, compact, and
# print the version history. Later stages (Ray) extend this same script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LANCEFLOW="$CARGO_TARGET_DIR/debug/lanceflow"
LANCEFLOW_BENCH="$CARGO_TARGET_DIR/debug/lanceflow-bench"
WORK="${LANCEFLOW_WORK:-out}"
mkdir -p "$WORK"

if [ -f /usr/share/wordnet/data.noun ]; then
  # 20,000 synsets spread over all of WordNet keep the job to a few minutes on
  # two cores (embedding runs at ~240 glosses/s there); LANCEFLOW_DEMO_SAMPLE=0
  # takes all ~117k.
  SAMPLE="${LANCEFLOW_DEMO_SAMPLE:-20000}"
  if [ "$SAMPLE" = 0 ]; then
    "$LANCEFLOW" convert wordnet --out "$WORK/wordnet.jsonl"
  else
    "$LANCEFLOW" convert wordnet --out "$WORK/wordnet.jsonl" --sample "$SAMPLE"
  fi
  INPUT="$WORK/wordnet.jsonl"
else
  echo "demo: WordNet is not installed (apt-get install wordnet-base); using the bundled sample" >&2
  INPUT="fixtures/wordnet-sample.jsonl"
fi

# The last tenth of the records is held back and appended later, as a batch
# of new documents arriving after the knowledge base was built.
TOTAL=$(wc -l < "$INPUT")
BATCH=$((TOTAL / 10))
head -n "$((TOTAL - BATCH))" "$INPUT" > "$WORK/base.jsonl"
tail -n "$BATCH" "$INPUT" > "$WORK/batch.jsonl"

# A fresh knowledge base on every run (an overwrite would keep the old tags).
rm -rf "$WORK/wordnet.lance"
"$LANCEFLOW" ingest "$WORK/base.jsonl" --to "$WORK/wordnet.lance" --mode overwrite --max-rows-per-file 5000
"$LANCEFLOW" info "$WORK/wordnet.lance"

# Embeddings (all-MiniLM-L6-v2 in Rust, one task per fragment, one commit that
# adds the column), a distributed vector index, and searches by text.
"$LANCEFLOW" embed "$WORK/wordnet.lance" --template "{title}: {text}" --to-column vector
"$LANCEFLOW" index vector "$WORK/wordnet.lance" --column vector --type IVF_SQ --metric cosine
echo "nearest glosses to 'a large body of salt water', in-process:"
"$LANCEFLOW" search vector "$WORK/wordnet.lance" --query-text "a large body of salt water" \
  -k 5 --nprobes 20 --columns title,text
echo "the same search, distributed by index-segment ownership:"
"$LANCEFLOW" search vector "$WORK/wordnet.lance" --query-text "a large body of salt water" \
  -k 5 --nprobes 20 --columns title,text --distributed

# Full-text (BM25) indexes on title and text, built as distributed segments
# (positions kept for phrase queries), then the seed's question as full-text
# and as hybrid search (vector + full-text, fused by Reciprocal Rank Fusion).
"$LANCEFLOW" index scalar "$WORK/wordnet.lance" --column title --type INVERTED --with-position
"$LANCEFLOW" index scalar "$WORK/wordnet.lance" --column text --type INVERTED --with-position
QUESTION="What are the applications of deep learning in healthcare?"
echo "full-text search: $QUESTION"
"$LANCEFLOW" search text "$WORK/wordnet.lance" --query "$QUESTION" -k 5 --columns title,text
echo "hybrid search (RRF of vector and full-text legs): $QUESTION"
"$LANCEFLOW" search hybrid "$WORK/wordnet.lance" --query-text "$QUESTION" -k 5 \
  --nprobes 20 --columns title,text --timings

# Maintenance. New documents arrive in small fragments; `embed` only embeds
# fragments without vectors, and until the indexes are optimised the new rows
# are searched by flat scan (the search below finds one of them).
"$LANCEFLOW" tag create "$WORK/wordnet.lance" indexed
"$LANCEFLOW" ingest "$WORK/batch.jsonl" --to "$WORK/wordnet.lance" --mode append --max-rows-per-file 500
"$LANCEFLOW" embed "$WORK/wordnet.lance" --template "{title}: {text}" --to-column vector
NEW_TEXT=$(tail -n 1 "$WORK/batch.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')
echo "an appended document, found before the indexes cover it: $NEW_TEXT"
"$LANCEFLOW" search vector "$WORK/wordnet.lance" --query-text "$NEW_TEXT" -k 3 --nprobes 20 --columns title,text
# Index the new fragments with the trained models (no retraining), as
# distributed build tasks, then merge small fragments (indexes are remapped).
"$LANCEFLOW" optimize "$WORK/wordnet.lance"
"$LANCEFLOW" compact "$WORK/wordnet.lance"
"$LANCEFLOW" info "$WORK/wordnet.lance"
echo "version history:"
"$LANCEFLOW" versions "$WORK/wordnet.lance"

# The same workflow from one file, as the seed reports it: every stage timed,
# a results table (stage, time, rows, rows/s, version), also as JSON.
echo "the whole workflow from one file (examples/wordnet.toml):"
"$LANCEFLOW" pipeline examples/wordnet.toml --restart --report "$WORK/pipeline-report.json"

# The online retrieval service, loaded like the seed's online RAG test: 36
# concurrent clients send text questions (embedding + search) over HTTP to
# `lanceflow serve`, run in-process on a free loopback port by the benchmark
# binary (lanceflow-bench, built by scripts/setup.sh); QPS and latency
# percentiles per mode, next to the same requests run in-process.
echo "online retrieval (lanceflow serve) under load:"
"$LANCEFLOW_BENCH" serve --dataset "$WORK/wordnet.lance" --mode vector,hybrid \
  --concurrency 36 --requests 5000 --nprobes 20 --columns title,text
