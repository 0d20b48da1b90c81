#!/bin/bash
# fuzz/campaign.sh [-r RUNS] [-t SECONDS] [-b BUILD_DIR] [-o RESULTS.md] [TARGET...]
#
# The long fuzzing campaign (outside CI): each target (default: all of
# fuzz/targets.sh) runs until RUNS executions (-runs, default 10000000) or
# SECONDS (-max_total_time, default 3600), one at a time unless
# FEATX_FUZZ_JOBS=2, at nice 10, from BUILD_DIR/campaign/<target>/corpus
# (kept between campaigns, seeded from make_corpus.py's seeds and the
# regression inputs). Writes a markdown table (default
# fuzz/campaign-results.md): executions, time, exec/s, final cov and ft,
# corpus size, peak RSS and findings (crash, leak, timeout, oom files, kept
# in BUILD_DIR/campaign/<target>/artifacts; an earlier campaign's are moved to
# earlier-artifacts first). Exits non-zero on a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
. fuzz/targets.sh
runs=10000000 seconds=3600 build=build-fuzz results=fuzz/campaign-results.md
while getopts "r:t:b:o:" opt; do
  case $opt in
    r) runs=$OPTARG ;;
    t) seconds=$OPTARG ;;
    b) build=$OPTARG ;;
    o) results=$OPTARG ;;
    *) sed -n 2,12p "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=${*:-$FUZZ_TARGETS}
jobs=${FEATX_FUZZ_JOBS:-1}

mkdir -p "$build" && build=$(cd "$build" && pwd)  # absolute: the runs cd into their folders
bash fuzz/build.sh "$build" $targets || exit 1
if [ ! -x "$build/seed_writer" ]; then
  nice -n 10 "${CXX:-clang++-14}" -std=c++17 -O1 -DFEATX_NO_OPENMP -I include -I/usr/include/eigen3 \
    fuzz/seed_writer.cpp -o "$build/seed_writer" || exit 1
fi
shared=${FEATX_SHARED_DIR:-../shared}
shared_arg=()
[ -d "$shared/images" ] && shared_arg=(--shared "$shared")
/usr/bin/python3 fuzz/make_corpus.py "$build" "${shared_arg[@]}" || exit 1

campaign() {
  local t=$1 work="$build/campaign/$1"
  mkdir -p "$work/corpus" "$work/artifacts" "$work/earlier-artifacts"
  # Findings of earlier campaigns are kept aside: the table counts this run's.
  find "$work/artifacts" -maxdepth 1 -type f -exec mv -t "$work/earlier-artifacts" {} +
  local args=() dict
  dict=$(fuzz_dict "$t")
  [ -n "$dict" ] && args+=("-dict=$PWD/$dict")
  local inputs=("$(fuzz_seed_dir "$build" "$t")")
  [ -d "fuzz/regressions/$t" ] && inputs+=("$PWD/fuzz/regressions/$t")
  local start end
  start=$(date +%s)
  (cd "$work" && nice -n 10 "$build/fuzz_$t" -runs="$runs" -max_total_time="$seconds" \
    -max_len="$(fuzz_max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=artifacts/ "${args[@]}" corpus "${inputs[@]}" > log.txt 2>&1)
  echo $? > "$work/rc"
  end=$(date +%s)
  echo $((end - start)) > "$work/seconds"
}
# textfiles writes a file per execution: on a tmpfs when there is one.
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
export -f campaign fuzz_dict fuzz_max_len fuzz_seed_dir
export build runs seconds
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'campaign {}'

failed=0
{
  echo "| target | execs | time (s) | exec/s | cov | ft | corpus | peak RSS (MB) | findings |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for t in $targets; do
    work="$build/campaign/$t"
    findings=$(ls "$work/artifacts" 2>/dev/null | tr '\n' ' ')
    [ -z "$findings" ] && [ "$(cat "$work/rc")" = 0 ] && findings=none
    [ "$findings" = none ] || failed=1
    awk -v t="$t" -v secs="$(cat "$work/seconds")" -v f="$findings" '
      /stat::number_of_executed_units/ { execs = $2 }
      /stat::average_exec_per_sec/ { rate = $2 }
      /stat::peak_rss_mb/ { rss = $2 }
      / cov: / { for (i = 1; i < NF; ++i) { if ($i == "cov:") cov = $(i + 1); if ($i == "ft:") ft = $(i + 1); if ($i == "corp:") corp = $(i + 1) } }
      END { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t, execs, secs, rate, cov, ft, corp, rss, f }' "$work/log.txt"
  done
} > "$results.tmp" && mv "$results.tmp" "$results"
cat "$results"
exit "$failed"
