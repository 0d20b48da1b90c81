#!/bin/bash
# tests/fuzz_test.sh [BUILD_DIR]: the libFuzzer harnesses of fuzz/ (issue 14).
#
#   1. builds every target (fuzz/build.sh) and fuzz/seed_writer into BUILD_DIR
#      (default build-fuzz), and the seeds (fuzz/make_corpus.py);
#   2. runs every committed regression input (fuzz/regressions/<target>/)
#      once through its target: none may crash;
#   3. fuzzes each target for FEATX_FUZZ_SECONDS (default 30) from its seeds,
#      two targets at a time, at nice 10, with -timeout=10 -rss_limit_mb=2048
#      and the target's -max_len (fuzz/targets.sh).
# Fails naming the target and the crash file on any finding; prints one
# summary line per target from libFuzzer's -print_final_stats=1.
# FEATX_FUZZ_TARGETS (space-separated) limits the targets; FEATX_SHARED_DIR
# (default ../shared) adds crops of the shared photos to the image seeds.
set -uo pipefail
cd "$(dirname "$0")/.."
. fuzz/targets.sh
build=${1:-build-fuzz}
seconds=${FEATX_FUZZ_SECONDS:-30}
targets=${FEATX_FUZZ_TARGETS:-$FUZZ_TARGETS}
shared=${FEATX_SHARED_DIR:-../shared}

mkdir -p "$build" && build=$(cd "$build" && pwd)  # absolute: the runs cd into their folders
bash fuzz/build.sh "$build" $targets || { echo "fuzz_test: build failed"; exit 1; }
if [ ! -x "$build/seed_writer" ] || [ fuzz/seed_writer.cpp -nt "$build/seed_writer" ]; then
  nice -n 10 "${CXX:-clang++-14}" -std=c++17 -O1 -DFEATX_NO_OPENMP -I include -I/usr/include/eigen3 \
    fuzz/seed_writer.cpp -o "$build/seed_writer" || { echo "fuzz_test: seed_writer build failed"; exit 1; }
fi
shared_arg=()
[ -d "$shared/images" ] && shared_arg=(--shared "$shared")
/usr/bin/python3 fuzz/make_corpus.py "$build" "${shared_arg[@]}" || { echo "fuzz_test: make_corpus failed"; exit 1; }

failed=0
# 2. Regression inputs: each must run clean.
for t in $targets; do
  dir=fuzz/regressions/$t
  [ -d "$dir" ] || continue
  files=("$dir"/*)
  [ -e "${files[0]}" ] || continue
  if ! "$build/fuzz_$t" "${files[@]}" > "$build/regressions_$t.log" 2>&1; then
    echo "fuzz_test: FAIL $t: a regression input crashes (see $build/regressions_$t.log)"
    failed=1
  else
    echo "fuzz_test: $t: ${#files[@]} regression inputs clean"
  fi
done

# 3. Fuzz each target from a fresh copy of its seeds.
run_one() {
  local t=$1 work="$build/run/$1"
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
  local dict args=()
  dict=$(fuzz_dict "$t")
  [ -n "$dict" ] && args+=("-dict=$PWD/$dict")
  (cd "$work" && nice -n 10 "$build/fuzz_$t" -max_total_time="$seconds" -max_len="$(fuzz_max_len "$t")" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=artifacts/ "${args[@]}" \
    corpus "$(fuzz_seed_dir "$build" "$t")" > log.txt 2>&1)
  echo $? > "$work/rc"
}
export -f run_one fuzz_dict fuzz_max_len fuzz_seed_dir
export build seconds
printf '%s\n' $targets | xargs -P 2 -I{} bash -c 'run_one {}'

# stat::number_of_executed_units etc. and the last "cov:" line of each log.
summary() {
  local log=$1
  awk '
    /stat::number_of_executed_units/ { execs = $2 }
    /stat::average_exec_per_sec/ { rate = $2 }
    / cov: / { for (i = 1; i < NF; ++i) { if ($i == "cov:") cov = $(i + 1); if ($i == "ft:") ft = $(i + 1); if ($i == "corp:") corp = $(i + 1) } }
    END { printf "execs %s, %s exec/s, cov %s, ft %s, corpus %s", execs, rate, cov, ft, corp }' "$log"
}
for t in $targets; do
  work="$build/run/$t"
  crash=$(ls "$work"/artifacts/ 2>/dev/null | head -1)
  line="$t: $(summary "$work/log.txt"), ${seconds} s"
  if [ "$(cat "$work/rc")" != 0 ] || [ -n "$crash" ]; then
    echo "fuzz_test: FAIL $line: finding $work/artifacts/$crash (log $work/log.txt)"
    failed=1
  else
    echo "fuzz_test: $line"
  fi
done
[ "$failed" = 0 ] && echo "fuzz_test: all targets clean" || echo "fuzz_test: FAILED"
exit "$failed"
