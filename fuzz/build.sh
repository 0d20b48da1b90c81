#!/bin/bash
# fuzz/build.sh BUILD_DIR [TARGET...]: builds the libFuzzer harnesses
# (fuzz/fuzz_<target>.cpp) into BUILD_DIR/fuzz_<target>, two compilers at a
# time, at nice 10. A target is rebuilt only when a file it includes (its
# depfile) is newer than its binary. clang 14, ASan + UBSan, no OpenMP.
set -euo pipefail
cd "$(dirname "$0")/.."
. fuzz/targets.sh
out=${1:-build-fuzz}
shift || true
targets=${*:-$FUZZ_TARGETS}
mkdir -p "$out"
CXX=${CXX:-clang++-14}
# Smaller image limits than the library's defaults (2^26 pixels): a valid
# huge image only costs time and memory, and libFuzzer would report it as a
# timeout or out-of-memory rather than a bug.
CXXFLAGS="-std=c++17 -g1 -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -DFEATX_NO_OPENMP -DFEATX_MAX_IMAGE_SIDE=4096 -DFEATX_MAX_IMAGE_PIXELS=4194304
  -I include -I apps/featx -I fuzz"

# Up to date: the binary is newer than every file its depfile lists (the
# compiler writes BIN.d; for a binary without one, the preprocessor makes it).
up_to_date() {
  local t=$1 bin=$2
  [ -x "$bin" ] || return 1
  if [ ! -f "$bin.d" ]; then
    # shellcheck disable=SC2086
    "$CXX" $CXXFLAGS $(fuzz_target_flags "$t") -MM -MT "$bin" "fuzz/fuzz_$t.cpp" -MF "$bin.d" 2>/dev/null || return 1
  fi
  # The same flags as last time (fuzz/targets.sh may have changed them).
  [ "$(cat "$bin.flags" 2>/dev/null)" = "$CXXFLAGS $(fuzz_target_flags "$t")" ] || return 1
  local f
  for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$bin.d") fuzz/ubsan_ignore.txt; do
    [ "$f" -nt "$bin" ] && return 1
  done
  return 0
}

build_one() {
  local t=$1 bin="$out/fuzz_$1"
  up_to_date "$t" "$bin" && return 0
  echo "fuzz build: $bin"
  # shellcheck disable=SC2086
  nice -n 10 "$CXX" $CXXFLAGS -MD -MT "$bin" -MF "$bin.d" "fuzz/fuzz_$t.cpp" -o "$bin.tmp" $(fuzz_target_flags "$t") &&
    mv "$bin.tmp" "$bin" && echo "$CXXFLAGS $(fuzz_target_flags "$t")" > "$bin.flags"
}
export -f build_one up_to_date fuzz_target_flags
export out CXX CXXFLAGS
printf '%s\n' $targets | xargs -P 2 -I{} bash -c 'build_one {}'
