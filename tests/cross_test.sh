#!/usr/bin/env bash
# featx on another CPU, cross-built with Debian's GCC and run under
# qemu-user: the kernel tests (test_simd_kernels checks every ISA
# isa_supported() reports against the scalar references) plain and under
# ASan + UBSan (NEON has no masked loads: ASan is what proves the channel
# tails stay in bounds) or, where ASan cannot run under qemu-user, UBSan
# alone; the CLI built statically running `featx verify` on the stored
# goldens of a random model and a real one with every ISA of the target;
# and the golden suite (tests/test_golden.cpp) with the target's best ISA.
# Everything compiles with -Wall -Wextra -Werror.
#
# Usage: tests/cross_test.sh TARGET [--full | --no-golden | --golden-case NAME] [--features DIR]
#   TARGET       aarch64 (NEON), armv7 (32-bit ARM with NEON and VFPv4; also
#                built for Debian armhf's default FPU, where it is scalar) or
#                riscv64 (scalar: featx has no RVV kernels).
#   --full       the golden suite with every ISA, and the model, image, npy
#                and labels suites too.
#   --no-golden  no golden suite (the kernel tests and featx verify only).
#   --golden-case NAME  only the golden suite's test cases matching NAME
#                (doctest's --test-case: wildcards allowed).
#   --features DIR  also writes the real model's feature vectors of every
#                golden input and of the shared photos (each preset), per
#                ISA, to DIR/TARGET-ISA/ (docs/targets.md compares them
#                across targets).
# Needs g++-TRIPLE (aarch64-linux-gnu, arm-linux-gnueabihf,
# riscv64-linux-gnu) and qemu-user, plus doctest-dev, libflatbuffers-dev and
# libstb-dev as the native build does. Without the compiler or qemu it
# prints SKIP and exits 0. Times: docs/targets.md.
# Env: CROSS_CXX, CROSS_QEMU, CROSS_SYSROOT override the table below;
#      CROSS_FLAGS adds compiler flags; CROSS_JOBS: builds at once
#      (default: cores); FEATX_TEST_MODELS_DIR
#      (default build/test_models, made by the native CMake build),
#      FEATX_SHARED_DIR (default ../shared).
set -euo pipefail
caller_dir=$(pwd)
cd "$(dirname "$0")/.."
root=$(pwd)
usage() { echo "usage: tests/cross_test.sh aarch64|armv7|riscv64 [--full | --no-golden | --golden-case NAME] [--features DIR]" >&2; exit 2; }
target=${1:-}
[ $# -gt 0 ] && shift
full=0 golden=1 features="" golden_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --full) full=1 ;;
    --no-golden) golden=0 ;;
    --golden-case) [ $# -ge 2 ] || usage; golden_args=(--test-case="$2"); shift ;;
    --features) [ $# -ge 2 ] || usage; features=$2; shift ;;
    *) usage ;;
  esac
  shift
done
case $features in ""|/*) ;; *) features=$caller_dir/$features ;; esac

# The targets. isas: what `featx verify` and the golden suite run (FEATX_ISA);
# ubsan: "runtime", or "trap" where the cross GCC ships no libubsan (checks
# still run, a failure is SIGILL without a message); loader: the sysroot's
# dynamic loader, needed for the ASan build; ubsan_flags: what a target's
# sanitizer builds add; no_asan: why ASan does not run, if it does not.
arch_flags=() isas=() ubsan=runtime ubsan_flags=() no_asan=""
case $target in
  aarch64)
    triple=aarch64-linux-gnu qemu=qemu-aarch64 loader=ld-linux-aarch64.so.1 isas=(neon scalar) ;;
  armv7)
    # armv7-a with NEON and VFPv4 (Cortex-A7/A15 and later): vfmaq_f32.
    # -Wno-psabi: GCC's notes on a 2017 ABI change of vector arguments.
    triple=arm-linux-gnueabihf qemu=qemu-arm loader=ld-linux-armhf.so.3 isas=(neon scalar)
    arch_flags=(-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard -Wno-psabi)
    # qemu's default CPU has every extension; an A15 faults on anything
    # armv7 lacks.
    export QEMU_CPU=${QEMU_CPU:-cortex-a15}
    # GCC 12 emits an expression the assembler rejects ("-12-(x(tpoff))")
    # for UBSan's object-size check on doctest's thread_locals; featx has
    # none, and ASan covers out-of-bounds accesses.
    ubsan_flags=(-fno-sanitize=object-size) ;;
  riscv64)
    triple=riscv64-linux-gnu qemu=qemu-riscv64 loader=ld-linux-riscv64-lp64d.so.1 isas=(scalar)
    ubsan="trap"
    # GCC 12's riscv64 libasan knows Sv39's 39-bit layout only; qemu-user
    # maps higher and the runtime dies in its allocator before main
    # (google/sanitizers#1707, riscv-collab/riscv-gnu-toolchain#1683).
    no_asan="GCC 12's riscv64 ASan runtime does not start under qemu-user (39-bit address layout only)" ;;
  *) usage ;;
esac
cxx=${CROSS_CXX:-$triple-g++}
qemu=${CROSS_QEMU:-$qemu}
sysroot=${CROSS_SYSROOT:-/usr/$triple}
for tool in "$cxx" "$qemu"; do
  if ! command -v "$tool" > /dev/null; then
    echo "SKIP: $target tests: $tool not found (apt-get install g++-$triple qemu-user)"
    exit 0
  fi
done
[ -f /usr/include/doctest/doctest.h ] || { echo "$target tests: /usr/include/doctest/doctest.h missing (doctest-dev)"; exit 1; }

start=$(date +%s)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Only the header-only libraries, each through its own symlink: -I/usr/include
# would put the host's (x86) glibc headers ahead of the cross compiler's.
mkdir -p "$tmp/inc"
for lib in doctest flatbuffers stb; do
  if [ -d "/usr/include/$lib" ]; then ln -s "/usr/include/$lib" "$tmp/inc/$lib"; fi
done
# CROSS_FLAGS: more compiler flags (e.g. -ffp-contract=off, docs/targets.md).
read -r -a extra_flags <<< "${CROSS_FLAGS:-}"
flags=(-std=c++17 -Wall -Wextra -Werror "${arch_flags[@]}" "${extra_flags[@]}" -I "$root/include" -isystem "$tmp/inc")
# test_sizes: the 32-bit size checks; test_tuning: the cache readers (sysfs
# off x86); test_search: the dot kernels (NEON beside the reference) and the
# index file; none needs a model file.
kernel_tests=(tests/test_main.cpp tests/test_simd_kernels.cpp tests/test_ref_kernels.cpp tests/test_sizes.cpp tests/test_tuning.cpp
              tests/test_search.cpp)
failures=0

# build NAME ARGS...: compiles in the background, at most CROSS_JOBS at once;
# log in $tmp/NAME.log, exit status in $tmp/NAME.rc.
jobs_max=${CROSS_JOBS:-$(nproc)}
declare -A pids
build() {
  local name=$1; shift
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 1; done
  ( set +e; t0=$(date +%s)
    "$cxx" "${flags[@]}" "$@" -o "$tmp/$name" > "$tmp/$name.log" 2>&1
    echo $? > "$tmp/$name.rc"; echo $(( $(date +%s) - t0 )) > "$tmp/$name.secs" ) &
  pids[$name]=$!
}
# built NAME: waits for it; prints its log when the build failed.
built() {
  wait "${pids[$1]}" || true
  if [ "$(cat "$tmp/$1.rc" 2> /dev/null)" = 0 ]; then
    echo "built $1 ($(cat "$tmp/$1.secs") s)"; return 0
  fi
  echo "FAIL: build $1:"; cat "$tmp/$1.log"; failures=$((failures + 1)); return 1
}
# run NAME CMD...: runs it with a timing line (wall and CPU seconds: other
# load on the machine stretches the first, not the second).
run() {
  local name=$1; shift
  local status=0
  echo "== $name"
  # In a subshell, so the CPU time is the command's alone (not also that of
  # builds the shell reaps meanwhile).
  ( TIMEFORMAT="%R %U %S"; time "$@" 2>&4 ) 4>&2 2> "$tmp/time" || status=$?
  if [ $status = 0 ]; then
    awk -v n="$name" '{ printf "== %s: ok (%.0f s, CPU %.0f s)\n", n, $1, $2 + $3 }' "$tmp/time"
  else echo "FAIL: $name"; failures=$((failures + 1)); fi
}

# libgomp.a warns that it may dlopen at run time; featx never makes it.
# -Werror does not turn a linker warning into an error.
build featx -O2 -static -fopenmp apps/featx/main.cpp
build kernels -O2 -static "${kernel_tests[@]}"
if [ $ubsan = trap ]; then ubsan_flags+=(-fsanitize-undefined-trap-on-error)
else ubsan_flags+=(-fno-sanitize-recover=all); fi
have_asan=0
if [ -z "$no_asan" ] && { [ ! -e "$sysroot/lib/$loader" ] || [ ! -e "$sysroot/lib/libasan.so.8" ]; }; then
  no_asan="no $loader and libasan.so.8 in $sysroot"
fi
if [ -z "$no_asan" ]; then
  have_asan=1
  build kernels_asan -O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined "${ubsan_flags[@]}" \
    "${kernel_tests[@]}"
else
  # Without ASan, UBSan alone (static: no sysroot needed).
  build kernels_ubsan -O1 -g1 -static -fsanitize=undefined "${ubsan_flags[@]}" "${kernel_tests[@]}"
fi
if [ "$target" = armv7 ]; then
  # Debian armhf's default FPU (VFPv3-D16, no NEON): isa.hpp must fall back
  # to the scalar kernels, and everything still compile.
  flags=("${flags[@]/-mfpu=neon-vfpv4/-mfpu=vfpv3-d16}")
  build kernels_vfpv3 -O2 -static "${kernel_tests[@]}"
  flags=("${flags[@]/-mfpu=vfpv3-d16/-mfpu=neon-vfpv4}")
fi

models=${FEATX_TEST_MODELS_DIR:-build/test_models}
shared=${FEATX_SHARED_DIR:-$(cd .. && pwd)/shared}
have_models=0
if [ -f "$models/random_a0.35_r96_s1_c0.featx" ]; then have_models=1
elif [ $full = 1 ]; then echo "FAIL: --full needs the test models in $models (build natively first)"; failures=$((failures + 1))
else echo "SKIP: featx verify and goldens: no test models in $models (build natively first)"; fi
suite_defines=(-DFEATX_SHARED_DIR="\"$shared\"" -DFEATX_SOURCE_DIR="\"$root\"")
[ $have_models = 1 ] && suite_defines+=(-DFEATX_TEST_MODELS_DIR="\"$(cd "$models" && pwd)\"")
if [ $have_models = 1 ] && [ $golden = 1 ]; then
  build golden -O2 -static -fopenmp "${suite_defines[@]}" tests/test_main.cpp tests/test_golden.cpp
fi
if [ $have_models = 1 ] && [ $full = 1 ]; then
  build suites -O2 -static -fopenmp "${suite_defines[@]}" tests/test_main.cpp tests/test_model.cpp \
    tests/test_labels.cpp tests/test_image.cpp tests/test_npy.cpp
fi

# The two search cases that exercise only the portable blocking (thread and
# tile invariance, brute force over large sets) take 40 s of emulated CPU per
# run and are the x86 suite's: left out here.
kernel_args=(--test-case-exclude="results do not depend on threads*,exact search equals a brute force*")
if built kernels; then
  run "kernel tests ($target: ${isas[0]} vs references)" "$qemu" "$tmp/kernels" "${kernel_args[@]}"
fi
if [ $have_asan = 1 ]; then
  # LeakSanitizer cannot run under qemu-user; ASan and UBSan can.
  if built kernels_asan; then
    ASAN_OPTIONS=detect_leaks=0 run "kernel tests, ASan + UBSan ($ubsan)" "$qemu" -L "$sysroot" "$tmp/kernels_asan" "${kernel_args[@]}"
  fi
else
  echo "SKIP: ASan run on $target: $no_asan"
  if built kernels_ubsan; then
    run "kernel tests, UBSan ($ubsan)" "$qemu" "$tmp/kernels_ubsan" "${kernel_args[@]}"
  fi
fi
if [ "$target" = armv7 ] && built kernels_vfpv3; then
  run "kernel tests (armv7 without NEON: scalar only)" "$qemu" "$tmp/kernels_vfpv3" "${kernel_args[@]}"
fi

real=$models/tflite_tf2_mobilenet_v2_1.0_224_ptq.featx
if built featx && [ $have_models = 1 ]; then
  for model in "$models/random_a0.35_r96_s1_c0.featx" "$real"; do
    if [ ! -f "$model" ]; then
      echo "SKIP: featx verify: $model not found (the native build makes it from $shared)"
      continue
    fi
    for isa in "${isas[@]}"; do
      FEATX_ISA=$isa run "featx verify ($target $isa) $(basename "$model")" "$qemu" "$tmp/featx" verify "$model"
    done
  done
  if [ -n "$features" ] && [ -f "$real" ]; then
    t0=$(date +%s)
    for isa in "${isas[@]}"; do
      mkdir -p "$features/$target-$isa"
      for input in tests/golden/inputs/*.npy; do
        FEATX_ISA=$isa "$qemu" "$tmp/featx" extract -m "$real" --threads 1 \
          -o "$features/$target-$isa/$(basename "$input")" "$input" > /dev/null ||
          { echo "FAIL: extract $input ($isa)"; failures=$((failures + 1)); }
      done
      # The shared photos through each preset's decode and resize (plain
      # C++ that GCC may contract differently per target; JPEG by stb_image
      # here, the cross builds have no libjpeg).
      for preset in tf tf-antialias keras fast; do
        FEATX_ISA=$isa "$qemu" "$tmp/featx" extract -m "$real" --threads 1 --preprocess $preset \
          -o "$features/$target-$isa/images_$preset.npy" "$shared"/images/*.bmp "$shared"/images/*.jpg > /dev/null ||
          { echo "FAIL: extract images ($preset, $isa)"; failures=$((failures + 1)); }
      done
    done
    echo "features: $features/$target-* ($(( $(date +%s) - t0 )) s)"
  fi
fi

# The golden suite: the best ISA, and with --full every one.
if [ -n "${pids[golden]:-}" ] && built golden; then
  for isa in "${isas[@]}"; do
    FEATX_ISA=$isa run "cpp_golden ($target $isa)" "$qemu" "$tmp/golden" "${golden_args[@]}"
    [ $full = 1 ] || break
  done
fi
if [ -n "${pids[suites]:-}" ] && built suites; then
  for suite in model image npy labels; do
    run "cpp_$suite ($target)" "$qemu" "$tmp/suites" "--source-file=*test_$suite.cpp"
  done
fi

if [ $failures -ne 0 ]; then
  echo "$target tests: $failures failure(s)"
  exit 1
fi
echo "$target tests passed in $(( $(date +%s) - start )) s"
