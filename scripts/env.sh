# Shared build environment, sourced by every script and by CI so that a build
# by hand and a CI build share one target directory and identical flags (a
# different RUSTFLAGS would rebuild lance from scratch: ~15 CPU-minutes).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lanceflow/target}"
if [ -z "${RUSTFLAGS+x}" ]; then
  # x86-64: AVX2 + FMA (Haswell, 2013, and later), the baseline pylance's
  # wheels are built for. Lance's distance kernels, k-means and the embedding
  # GEMMs are auto-vectorised at compile time; the SSE2 default runs them at
  # roughly half speed. LANCEFLOW_TARGET_CPU=x86-64 builds for older CPUs.
  RUSTFLAGS=""
  if [ "$(uname -m)" = x86_64 ]; then
    RUSTFLAGS="-C target-cpu=${LANCEFLOW_TARGET_CPU:-haswell}"
  fi
  if command -v mold >/dev/null 2>&1; then
    RUSTFLAGS="$RUSTFLAGS -C link-arg=-fuse-ld=mold"
  elif command -v ld.lld >/dev/null 2>&1; then
    RUSTFLAGS="$RUSTFLAGS -C link-arg=-fuse-ld=lld"
  fi
  export RUSTFLAGS="${RUSTFLAGS# }"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Where scripts/build-python.sh leaves the Python wheel.
export LANCEFLOW_WHEEL_DIR="${LANCEFLOW_WHEEL_DIR:-$HOME/.cache/lanceflow/wheels}"
