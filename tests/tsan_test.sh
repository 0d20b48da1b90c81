#!/usr/bin/env bash
# ThreadSanitizer on featx shared between threads (issue 14, item 4;
# docs/RELIABILITY.md, "ThreadSanitizer"). Builds tests/test_threads.cpp with
# clang++ -fsanitize=thread -fopenmp=libomp and runs it with LLVM's OpenMP
# runtime and its Archer tool (libarcher.so, Debian's libomp-14-dev), which
# tells TSan about OpenMP's barriers and regions. GCC's libgomp is not
# TSan-aware: it reports races that are not there (the canary shows it), so
# OpenMP stays ON in this build, on the runtime TSan can see through.
#
# First the set-up must prove itself, else the run fails:
#   1. tests/tsan/canary.cpp racy: a real race inside OpenMP teams of two
#      std::threads. TSan must report it (exit 66).
#   2. canary clean: the same shape as run() (std::threads, each with
#      parallel-for regions over its own buffers). Must be silent, with
#      Archer loaded (its verbose line).
#   3. canary clean without Archer (OMP_TOOL=disabled): printed only. On
#      Debian's libomp 14 it reports false races: what Archer removes.
#   4. test_threads' skipped canary case (two threads misusing one
#      workspace): TSan must report a race in include/featx.
# Then test_threads' suites, once with the scalar kernels (FEATX_ISA=scalar:
# LLVM 14's TSan does not instrument 32- and 64-byte vector loads and
# stores, so only the scalar kernels have every access checked) and once
# with the best ISA (the chunked blocks and the SIMD kernels' scheduling).
# Any report fails (halt_on_error=1), as does any bit that differs from the
# single-threaded run. One suppression, for libomp's own uninstrumented
# code (tests/tsan/suppressions.txt says why). Runs under setarch -R when
# the kernel's ASLR leaves TSan no room for its shadow memory.
#
# Usage: tests/tsan_test.sh [MODELS_DIR]   (default build/test_models, which
#   the normal build makes; the random 0.35/96 and 1.0/224 c10 models and,
#   when present, the TF2 model and the prepacked 0.35)
# Env: CXX_TSAN (clang++), FEATX_TSAN_BUILD (build-tsan), FEATX_TEST_ITERATIONS (4),
#      FEATX_TSAN_JOBS (2: compiles at once; 1: one after the other)
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-build/test_models}
out=${FEATX_TSAN_BUILD:-build-tsan}
cxx=${CXX_TSAN:-clang++}
parallel=${FEATX_TSAN_JOBS:-2}
start=$(date +%s)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

[ -f "$models/random_a0.35_r96_s1_c0.featx" ] || { echo "FAIL: $models/random_a0.35_r96_s1_c0.featx not found (build the test models first)"; exit 1; }
command -v "$cxx" > /dev/null || { echo "FAIL: $cxx not found (Debian: clang)"; exit 1; }
models=$(cd "$models" && pwd)
mkdir -p "$out"
echo "tsan: $("$cxx" --version | head -1)"

flags=(-std=c++17 -fsanitize=thread -fopenmp=libomp -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror)
# FlatBuffers, stb and doctest from /usr/include (Debian's packages).
featx_flags=(-Iinclude -DFEATX_TEST_MODELS_DIR="\"$models\"")

# Build: the canary, then test_threads' two objects at once (2 cores).
t=$(date +%s)
"$cxx" "${flags[@]}" tests/tsan/canary.cpp -o "$out/tsan_canary" > "$out/canary.log" 2>&1 ||
  { echo "FAIL: build the canary:"; head -40 "$out/canary.log"; exit 1; }
object() { "$cxx" "${flags[@]}" "${featx_flags[@]}" -c "tests/$1.cpp" -o "$out/$1.o" > "$out/$1.log" 2>&1; }
main_rc=0 threads_rc=0
if [ "$parallel" -gt 1 ]; then
  object test_main & main_pid=$!
  object test_threads || threads_rc=$?
  wait "$main_pid" || main_rc=$?
else
  object test_main || main_rc=$?
  object test_threads || threads_rc=$?
fi
[ "$main_rc" = 0 ] || { echo "FAIL: build test_main:"; head -40 "$out/test_main.log"; exit 1; }
[ "$threads_rc" = 0 ] || { echo "FAIL: build test_threads:"; head -40 "$out/test_threads.log"; exit 1; }
"$cxx" "${flags[@]}" "$out/test_main.o" "$out/test_threads.o" -o "$out/test_threads" > "$out/link.log" 2>&1 ||
  { echo "FAIL: link test_threads:"; head -40 "$out/link.log"; exit 1; }
echo "ok: built the canary and test_threads with -fsanitize=thread -fopenmp=libomp ($(elapsed "$t"))"

# The OpenMP runtime the binaries load, and Archer beside it.
libomp=$(ldd "$out/test_threads" | awk '/libomp/ {print $3; exit}')
[ -n "$libomp" ] || { echo "FAIL: test_threads does not load libomp (Debian: libomp-14-dev)"; exit 1; }
archer=$(dirname "$(readlink -f "$libomp")")/libarcher.so
[ -f "$archer" ] || { echo "FAIL: $archer not found (Debian: libomp-14-dev ships it)"; exit 1; }
echo "tsan: OpenMP runtime $libomp, tool $archer"
supp=$PWD/tests/tsan/suppressions.txt
export OMP_TOOL_LIBRARIES=$archer ARCHER_OPTIONS=verbose=1
tsan_options="exitcode=66 suppressions=$supp second_deadlock_stack=1"
reports() { grep -c '^WARNING: ThreadSanitizer' "$1" || true; }
# LLVM 14's TSan cannot start under a kernel's high-entropy ASLR
# (vm.mmap_rnd_bits > 28: "unexpected memory mapping"): then every run goes
# through setarch -R (no ASLR), which changes nothing else.
run=()
if ! "$out/tsan_canary" clean > "$out/canary_start.log" 2>&1 && grep -q 'unexpected memory mapping' "$out/canary_start.log"; then
  run=(setarch "$(uname -m)" -R)
  echo "tsan: TSan cannot map its shadow with this kernel's ASLR: running under ${run[*]}"
fi

# 1. The racy canary must be reported.
rc=0; TSAN_OPTIONS="$tsan_options halt_on_error=1" "${run[@]}" "$out/tsan_canary" racy > "$out/canary_racy.log" 2>&1 || rc=$?
if [ "$rc" = 66 ] && grep -q 'canary.cpp:' "$out/canary_racy.log"; then
  echo "ok: canary racy: TSan reported the race ($(grep -m1 -o 'canary.cpp:[0-9:]*' "$out/canary_racy.log"), exit $rc)"
else
  fail "canary racy: TSan did not report the race (exit $rc): the set-up cannot see races"; tail -20 "$out/canary_racy.log"
fi
# 2. The clean canary must be silent, with Archer in.
rc=0; TSAN_OPTIONS="$tsan_options halt_on_error=1" "${run[@]}" "$out/tsan_canary" clean > "$out/canary_clean.log" 2>&1 || rc=$?
if [ "$rc" = 0 ] && [ "$(reports "$out/canary_clean.log")" = 0 ] && grep -q '^Archer detected OpenMP application with TSan' "$out/canary_clean.log"; then
  echo "ok: canary clean: no report, $(grep -m1 '^Archer detected OpenMP application with TSan' "$out/canary_clean.log")"
else
  fail "canary clean: exit $rc, $(reports "$out/canary_clean.log") reports (or Archer not loaded)"; tail -30 "$out/canary_clean.log"
fi
# 3. Without Archer: for the record.
rc=0; OMP_TOOL=disabled TSAN_OPTIONS="$tsan_options halt_on_error=0" "${run[@]}" "$out/tsan_canary" clean > "$out/canary_no_archer.log" 2>&1 || rc=$?
echo "note: canary clean without Archer (OMP_TOOL=disabled): $(reports "$out/canary_no_archer.log") reports (any are false: TSan does not see OpenMP's barriers; Debian's libomp 14 gives 4), exit $rc"
# 4. A real race in featx's own code must be reported.
rc=0; TSAN_OPTIONS="$tsan_options halt_on_error=1" "${run[@]}" "$out/test_threads" --no-skip -tc='canary*' > "$out/featx_canary.log" 2>&1 || rc=$?
where=$(grep -m1 -o 'include/featx/[a-z0-9_/]*\.hpp:[0-9]*' "$out/featx_canary.log" || true)
if [ "$rc" = 66 ] && [ -n "$where" ]; then
  echo "ok: featx canary (two threads, one workspace): TSan reported the race at $where"
else
  fail "featx canary: no race reported in include/featx (exit $rc)"; tail -30 "$out/featx_canary.log"
fi

# The test itself: every report and every differing bit fails.
for isa in scalar best; do
  t=$(date +%s)
  log=$out/test_threads_$isa.log
  rc=0
  if [ $isa = scalar ]; then
    FEATX_ISA=scalar TSAN_OPTIONS="$tsan_options halt_on_error=1" "${run[@]}" "$out/test_threads" > "$log" 2>&1 || rc=$?
  else
    env -u FEATX_ISA TSAN_OPTIONS="$tsan_options halt_on_error=1" "${run[@]}" "$out/test_threads" > "$log" 2>&1 || rc=$?
  fi
  n=$(reports "$log")
  if [ "$rc" = 0 ] && [ "$n" = 0 ] && grep -q 'Status: SUCCESS' "$log"; then
    echo "ok: test_threads under TSan, ISA $isa: no report, $(grep -o '[0-9]* outputs bit-identical' "$log" |
      awk '{s += $1} END {print s}') outputs bit-identical, $(grep -m1 -o 'test cases: *[0-9]* | *[0-9]* passed' "$log") ($(elapsed "$t"))"
  else
    fail "test_threads under TSan, ISA $isa: exit $rc, $n reports:"; grep -v '^Archer' "$log" | head -80
  fi
done

echo "tsan: $failures failure(s) in $(elapsed "$start")"
[ "$failures" = 0 ]
