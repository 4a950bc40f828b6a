#!/usr/bin/env bash
# Run every test. Starts a moto S3 server on loopback for the S3 tests and
# stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if ! python3 -c "import moto.server" >/dev/null 2>&1; then
  echo "test: moto is missing; run scripts/setup.sh (or pip install \"moto[server]\")" >&2
  exit 1
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log="$(mktemp -t moto.XXXXXX.log)"
python3 -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
export LANCEFLOW_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
echo "test: moto S3 server at $LANCEFLOW_TEST_S3_ENDPOINT" >&2

# The fault-injecting proxy in front of it (scripted 503/500/resets/stalls/
# lost responses, per bucket; see scripts/s3_fault_proxy.py).
proxy_out="$(mktemp -t s3proxy.XXXXXX.log)"
python3 scripts/s3_fault_proxy.py --upstream "$LANCEFLOW_TEST_S3_ENDPOINT" >"$proxy_out" 2>&1 &
proxy_pid=$!
out="$(mktemp -t lanceflow-test.XXXXXX.log)"
trap 'kill $moto_pid $proxy_pid 2>/dev/null || true; wait $moto_pid $proxy_pid 2>/dev/null || true; rm -f "$log" "$out" "$proxy_out"' EXIT
for _ in $(seq 1 100); do
  if [ -s "$proxy_out" ]; then break; fi
  sleep 0.1
done
export LANCEFLOW_TEST_S3_FAULT_PROXY="$(head -n1 "$proxy_out")"
echo "test: S3 fault proxy at $LANCEFLOW_TEST_S3_FAULT_PROXY" >&2
set +e
cargo test "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e

# The Python package (Ray executor, API) against a local 3-node Ray cluster.
# Skipped when cargo test got a filter (a targeted Rust run).
py_status=0
if [ $# -eq 0 ] && [ -z "${LANCEFLOW_SKIP_PYTHON:-}" ]; then
  bash scripts/build-python.sh >/dev/null
  set +e
  python3 -m pytest crates/python/tests -q -p no:cacheprovider 2>&1 | tee -a "$out"
  py_status=${PIPESTATUS[0]}
  set -e
fi
# One closing line for the whole run (cargo's and pytest's counts).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^[0-9]+ (passed|failed)|, [0-9]+ (passed|failed)/ && /in [0-9.]+s/ { for (i = 1; i <= NF; i++) { w = $(i+1); gsub(/[^a-z]/, "", w); if (w == "passed") p += $i; if (w == "failed") f += $i } }
     END { printf "totals: %d passed, %d failed\n", p, f }' "$out"
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$py_status"
