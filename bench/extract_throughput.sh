#!/usr/bin/env bash
# bench/extract_throughput.sh: images/s of `featx extract` on a folder of
# real photos (the shared photos repeated to N files, symlinks) beside the
# network alone (`featx bench`, the same batch and threads), as a Markdown
# table for bench/RESULTS.md.
#
# Per batch and thread count: the network's images/s (batch * 1000 /
# featx_ms_median), extract with decoding on the main thread
# (--decoders 0: decode + network, one after the other) and with 1 and 2
# decoder threads (pipelined). decode-only images/s is derived from the two
# sequential figures: 1 / (1/sequential - 1/network); and extract with its
# defaults (the batch alone: featx picks threads and decoders; the same in
# every row of one batch). Runs are interleaved
# (every configuration once per round, ROUNDS rounds) and medians are
# reported: a busy machine slows them alike.
#
# Usage: bench/extract_throughput.sh [MODEL] > table.md
# Env: FEATX (default build/featx), N (files, default 2000), ROUNDS
#   (default 3), FEATX_SHARED_DIR (default ../shared), CONFIGS (default
#   "1:1 1:2 8:1 8:2", batch:threads), PHOTOS ("all" or "jpeg").
set -euo pipefail
cd "$(dirname "$0")/.."
featx=${FEATX:-build/featx}
model=${1:-build/mobilenet_v2.featx}
shared=${FEATX_SHARED_DIR:-$(cd .. && pwd)/shared}
n=${N:-2000} rounds=${ROUNDS:-3}
configs=${CONFIGS:-"1:1 1:2 8:1 8:2"}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

photos=()
for p in "$shared"/images/*; do
  case "${PHOTOS:-all}:$p" in
    all:*.jpg | all:*.bmp | jpeg:*.jpg) photos+=("$p") ;;
  esac
done
mkdir -p "$work/photos"
for i in $(seq 0 $((n - 1))); do
  p=${photos[$((i % ${#photos[@]}))]}
  ln -s "$p" "$work/photos/$(printf '%05d' "$i")_$(basename "$p")"
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A results
for round in $(seq "$rounds"); do
  for c in $configs; do
    b=${c%:*} t=${c#*:}
    ms=$("$featx" bench -m "$model" --batch "$b" --threads "$t" --runs 10 | awk '/featx_ms_median/ { print $2 }')
    results[$c:net]+="$(awk -v b="$b" -v ms="$ms" 'BEGIN { printf "%.2f", b * 1000 / ms }') "
    for d in 0 1 2; do
      t0=$(date +%s.%N)
      "$featx" extract -m "$model" --batch "$b" --threads "$t" --decoders "$d" -q -o "$work/out.npy" "$work/photos"
      t1=$(date +%s.%N)
      results[$c:$d]+="$(awk -v n="$n" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.2f", n / (z - a) }') "
    done
    # The defaults: no --threads, no --decoders (the batch alone).
    t0=$(date +%s.%N)
    "$featx" extract -m "$model" --batch "$b" -q -o "$work/out.npy" "$work/photos"
    t1=$(date +%s.%N)
    results[$c:default]+="$(awk -v n="$n" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.2f", n / (z - a) }') "
    echo "round $round: $c done" >&2
  done
done

echo "| batch | threads | network (featx bench) | extract, decoding on the main thread | derived decode-only | extract, 1 decoder thread | 2 decoder threads | extract, default threads and decoders |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for c in $configs; do
  m() { tr ' ' '\n' <<< "${results[$c:$1]}" | grep . | median; }
  net=$(m net) seq=$(m 0) d1=$(m 1) d2=$(m 2) def=$(m default)
  dec=$(awk -v s="$seq" -v n="$net" 'BEGIN { x = 1 / s - 1 / n; if (x > 0) printf "%.1f", 1 / x; else print "-" }')
  echo "| ${c%:*} | ${c#*:} | $net | $seq | $dec | $d1 | $d2 | $def |"
done
echo
echo "images/s, medians of $rounds interleaved rounds; $n files ($(IFS=,; echo "${photos[*]##*/}") repeated), model $(basename "$model")."
