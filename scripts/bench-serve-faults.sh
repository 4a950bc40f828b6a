#!/usr/bin/env bash
# The service under attack and under storage faults: `lanceflow-bench serve`
# with 36 clients × 5,000 requests while one more client sends adversarial
# bodies (--adversary), every answer checked against the engine's own
# (--verify), three times side by side:
#   1. the demo dataset on local disk;
#   2. the same dataset on S3 (moto on loopback, through scripts/s3_fault_proxy.py);
#   3. the same, with the proxy answering 5% of the store's requests with
#      503 SlowDown or 500 InternalError.
# Run scripts/demo.sh first. CONCURRENCY, REQUESTS, MODES override the load.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --quiet --bin lanceflow-bench
BENCH="$CARGO_TARGET_DIR/debug/lanceflow-bench"
DATA="${1:-${LANCEFLOW_WORK:-out}/wordnet.lance}"
LOAD=(--concurrency "${CONCURRENCY:-36}" --requests "${REQUESTS:-5000}" --mode "${MODES:-vector}"
      --adversary --verify)
[ -d "$DATA" ] || { echo "bench-serve-faults: no dataset at $DATA; run scripts/demo.sh first" >&2; exit 2; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(port)
PROXY_PORT=$(port)
python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >/dev/null 2>&1 &
moto_pid=$!
python3 scripts/s3_fault_proxy.py --upstream "http://127.0.0.1:$MOTO_PORT" --port "$PROXY_PORT" >/dev/null 2>&1 &
proxy_pid=$!
trap 'kill $moto_pid $proxy_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/')" >/dev/null 2>&1 && break
  sleep 0.2
done

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
# The dataset's files, copied as they are (a Lance dataset is a directory of
# files with relative paths).
python3 - "$DATA" "http://127.0.0.1:$MOTO_PORT" <<'PY'
import os, sys, boto3
root, endpoint = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket="served")
for dirpath, _, files in os.walk(root):
    for name in files:
        path = os.path.join(dirpath, name)
        s3.upload_file(path, "served", "kb.lance/" + os.path.relpath(path, root))
PY

echo "== 1. local disk"
"$BENCH" -q serve --dataset "$DATA" "${LOAD[@]}"
export AWS_ENDPOINT="http://127.0.0.1:$PROXY_PORT"
echo "== 2. S3 (moto through the proxy), no faults"
"$BENCH" -q serve --dataset s3://served/kb.lance "${LOAD[@]}"
echo "== 3. S3 with 5% of the store's requests failing (2.5% 503 SlowDown, 2.5% 500)"
"$BENCH" -q serve --dataset s3://served/kb.lance "${LOAD[@]}" \
  --fault-proxy "http://127.0.0.1:$PROXY_PORT" \
  --fault-rule '[{"fault": "slowdown", "probability": 0.025, "seed": 1, "times": 0},
                 {"fault": "error500", "probability": 0.025, "seed": 2, "times": 0}]'
