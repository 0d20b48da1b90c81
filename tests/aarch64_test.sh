#!/usr/bin/env bash
# The NEON kernels on aarch64, under emulation: cross-builds the kernel tests
# (test_simd_kernels checks every ISA isa_supported() reports, so here: neon
# against the scalar references) and runs them with qemu-user. Also runs them
# under UBSan (static) and ASan + UBSan (dynamic, through the cross sysroot:
# NEON has no masked loads, so ASan is what proves the channel tails stay in
# bounds), cross-builds the CLI and verifies a model's stored goldens with it.
#
# Needs Debian's g++-aarch64-linux-gnu and qemu-user (and, as for the native
# build, doctest-dev, libflatbuffers-dev, libstb-dev). Without the cross
# compiler or qemu it prints SKIP and exits 0.
#
# Usage: tests/aarch64_test.sh [--full]
#   --full  also cross-builds the whole C++ suite and runs it under qemu
#           (the golden suite alone takes ~7 min emulated).
# Env: FEATX_TEST_MODELS_DIR (default build/test_models, made by the native
#      CMake build), FEATX_SHARED_DIR (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
full=0
[ "${1:-}" = "--full" ] && full=1

cxx=${AARCH64_CXX:-aarch64-linux-gnu-g++}
qemu=${QEMU_AARCH64:-qemu-aarch64}
sysroot=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
for tool in "$cxx" "$qemu"; do
  if ! command -v "$tool" > /dev/null; then
    echo "SKIP: aarch64 tests: $tool not found (apt-get install g++-aarch64-linux-gnu qemu-user)"
    exit 0
  fi
done
[ -f /usr/include/doctest/doctest.h ] || { echo "aarch64 tests: /usr/include/doctest/doctest.h missing (doctest-dev)"; exit 1; }

start=$(date +%s)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Only the header-only libraries, each through its own symlink: -I/usr/include
# would put the host's (x86) glibc headers ahead of the cross compiler's.
mkdir -p "$tmp/inc"
for lib in doctest flatbuffers stb; do
  if [ -d "/usr/include/$lib" ]; then ln -s "/usr/include/$lib" "$tmp/inc/$lib"; fi
done
flags=(-std=c++17 -Wall -Wextra -I "$root/include" -isystem "$tmp/inc")
kernel_tests=(tests/test_main.cpp tests/test_simd_kernels.cpp tests/test_ref_kernels.cpp)
failures=0

# build NAME ARGS...: compiles in the background (2 cores: builds dominate), log in $tmp/NAME.log.
declare -A pids
build() {
  local name=$1; shift
  "$cxx" "${flags[@]}" "$@" -o "$tmp/$name" > "$tmp/$name.log" 2>&1 &
  pids[$name]=$!
}
# built NAME: waits for it; prints its log when the build failed.
built() {
  if wait "${pids[$1]}"; then return 0; fi
  echo "FAIL: build $1:"; cat "$tmp/$1.log"; failures=$((failures + 1)); return 1
}
# run NAME CMD...: runs under qemu with a timing line.
run() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "== $name"
  if "$@"; then echo "== $name: ok ($(( $(date +%s) - t0 )) s)"
  else echo "FAIL: $name"; failures=$((failures + 1)); fi
}

build kernels -O2 -static "${kernel_tests[@]}"
build kernels_ubsan -O1 -g -static -fsanitize=undefined -fno-sanitize-recover=all "${kernel_tests[@]}"
have_sysroot=0
if [ -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  have_sysroot=1
  build kernels_asan -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=all "${kernel_tests[@]}"
fi
have_cli=0
if [ -d "$tmp/inc/flatbuffers" ] && [ -d "$tmp/inc/stb" ]; then
  have_cli=1
  # libgomp.a warns that it may dlopen at run time; featx never makes it.
  build featx -O2 -static -fopenmp apps/featx/main.cpp
fi

models=${FEATX_TEST_MODELS_DIR:-build/test_models}
if [ $full = 1 ] && [ ! -d "$models" ]; then
  echo "FAIL: --full needs the test models in $models (build natively first)"; failures=$((failures + 1))
elif [ $full = 1 ]; then
  shared=${FEATX_SHARED_DIR:-$(cd .. && pwd)/shared}
  build all_tests -O2 -static -fopenmp -DFEATX_SHARED_DIR="\"$shared\"" \
    -DFEATX_TEST_MODELS_DIR="\"$(cd "$models" && pwd)\"" -DFEATX_SOURCE_DIR="\"$root\"" \
    tests/test_main.cpp tests/test_ref_kernels.cpp tests/test_model.cpp tests/test_golden.cpp \
    tests/test_labels.cpp tests/test_image.cpp tests/test_npy.cpp tests/test_simd_kernels.cpp
fi

built kernels && run "kernel tests (neon vs references)" "$qemu" "$tmp/kernels"
built kernels_ubsan && run "kernel tests, UBSan" "$qemu" "$tmp/kernels_ubsan"
if [ $have_sysroot = 1 ]; then
  # LeakSanitizer cannot run under qemu-user; ASan and UBSan can.
  built kernels_asan && ASAN_OPTIONS=detect_leaks=0 \
    run "kernel tests, ASan + UBSan" "$qemu" -L "$sysroot" "$tmp/kernels_asan"
else
  echo "SKIP: ASan run: no aarch64 sysroot at $sysroot"
fi

if [ $have_cli = 1 ]; then
  if built featx; then
    model=$models/random_a0.35_r96_s1_c0.featx
    if [ -f "$model" ]; then
      run "featx verify (neon) $model" "$qemu" "$tmp/featx" verify "$model"
    else
      echo "SKIP: featx verify: $model not found (build natively first)"
    fi
  fi
else
  echo "SKIP: CLI cross-build: flatbuffers or stb headers missing"
fi

if [ $full = 1 ] && [ -n "${pids[all_tests]:-}" ] && built all_tests; then
  for suite in model image npy labels golden; do
    run "cpp_$suite (aarch64)" "$qemu" "$tmp/all_tests" "--source-file=*test_$suite.cpp"
  done
fi

if [ $failures -ne 0 ]; then
  echo "aarch64 tests: $failures failure(s)"
  exit 1
fi
echo "aarch64 tests passed in $(( $(date +%s) - start )) s"
