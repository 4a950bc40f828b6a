# Shared build environment, sourced by every script and by CI so that a build
# by hand and a CI build share one target directory and identical flags (a
# different RUSTFLAGS would rebuild lance from scratch: ~15 CPU-minutes).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lanceflow/target}"
if [ -z "${RUSTFLAGS+x}" ]; then
  if command -v mold >/dev/null 2>&1; then
    export RUSTFLAGS="-C link-arg=-fuse-ld=mold"
  elif command -v ld.lld >/dev/null 2>&1; then
    export RUSTFLAGS="-C link-arg=-fuse-ld=lld"
  fi
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
