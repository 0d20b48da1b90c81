#!/usr/bin/env bash
# featx's writers and readers when the machine misbehaves: a full disk (a
# small tmpfs), a file-size limit (RLIMIT_FSIZE), unreadable inputs, a
# read-only output folder, a run killed with SIGKILL. For every command
# that writes a file (extract, merge, index, train-probe, pca fit, pca
# transform): a one-line error naming the file and a non-zero exit, no file
# under the final name that is not complete, and nothing lost: extract's
# parts resume to the bytes of an undisturbed run. Prints the table
# docs/RELIABILITY.md shows.
#
#   bash tests/fault_test.sh FEATX MODEL IMAGES_DIR
# Needs root for the tmpfs mounts and to run featx as nobody (setpriv):
# permissions do not bind root. Without them those cases are reported SKIP
# (and the run fails under CI=true, where every case must run).
set -uo pipefail
featx=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
model=$2 images=$3
work=$(mktemp -d /tmp/featx-faults.XXXXXX)
chmod 755 "$work"
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2> /dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0 skips=0
rows=()
row() { rows+=("| $1 | $2 | $3 |"); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The inputs: 40 photos (rows of 5 kB: a 64 kB disk fills within them).
mkdir -p "$work/in"
n=0
while [ $n -lt 40 ]; do
  for f in "$images"/*.jpg "$images"/*.bmp; do
    [ $n -lt 40 ] || break
    n=$((n + 1)); ln -s "$f" "$work/in/$(printf '%02d' $n)_$(basename "$f")"
  done
done
"$featx" extract -m "$model" -o "$work/clean.npy" --quiet "$work"/in/* || { echo "FAIL: the undisturbed run"; exit 1; }
"$featx" index -o "$work/clean.fxi" --quiet "$work/clean.npy" > /dev/null || { echo "FAIL: index"; exit 1; }
for k in 0 1; do
  "$featx" extract -m "$model" -o "$work/shard$k.npy" --quiet --shard $k/2 "$work"/in/* || { echo "FAIL: shard $k"; exit 1; }
done
ls "$work"/in | sed 's/^[0-9]*_//; s/\..*//' > "$work/labels.txt"
"$featx" pca fit -o "$work/clean.pca" -k 4 "$work/clean.npy" > /dev/null || { echo "FAIL: pca fit"; exit 1; }

# one_line_error LOG FILE: the log is one line "featx: error: ..." naming FILE.
one_line_error() {
  local lines; lines=$(grep -c . "$1")
  if [ "$lines" != 1 ] || ! grep -q "^featx: error: .*$2" "$1"; then
    echo "    expected one line 'featx: error: ...$2...', got:"; sed 's/^/    | /' "$1"; return 1
  fi
}
# no_final FILE...: none of the final names exists (only .part files may).
no_final() {
  local f; for f in "$@"; do [ ! -e "$f" ] || { echo "    $f exists after a failed run"; return 1; }; done
}

can_mount=1
mkdir -p "$work/probe_mount"
if mount -t tmpfs -o size=64k tmpfs "$work/probe_mount" 2> /dev/null; then umount "$work/probe_mount"; else can_mount=0; fi
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
can_drop=1
"${as_nobody[@]}" true 2> /dev/null || can_drop=0
skip() {
  echo "SKIP: $1"; skips=$((skips + 1)); row "$1" "not run: $2" "-"
}

# -- a full disk -------------------------------------------------------------
if [ $can_mount = 1 ]; then
  disk=$work/full
  mkdir -p "$disk"
  mount -t tmpfs -o size=64k tmpfs "$disk" && mounts+=("$disk")
  # extract: fails at the row that does not fit; the parts stay; after space
  # is freed, --resume ends with the undisturbed run's bytes.
  "$featx" extract -m "$model" -o "$disk/out.npy" --quiet "$work"/in/* 2> "$work/log"; rc=$?
  if [ $rc = 0 ]; then fail "extract on a full disk exited 0"
  elif ! one_line_error "$work/log" "$disk/out.npy.part: write failed (No space left on device)"; then fail "extract, full disk: message"
  elif ! no_final "$disk/out.npy" "$disk/out.npy.names.txt"; then fail "extract, full disk: final file"
  else
    rows_done=$(/usr/bin/python3 -c "import numpy as np,sys; print(np.load(sys.argv[1], mmap_mode='r').shape[0])" "$disk/out.npy.part" 2> /dev/null || echo "?")
    mount -o remount,size=4m "$disk"
    if "$featx" extract -m "$model" -o "$disk/out.npy" --quiet --resume "$work"/in/* 2> "$work/log2" &&
       cmp -s "$disk/out.npy" "$work/clean.npy" && cmp -s "$disk/out.npy.names.txt" "$work/clean.npy.names.txt"; then
      row "extract, disk full (64 kB tmpfs)" "exit $rc: \`$(sed 's/|/\\|/g' "$work/log")\`; parts kept (a valid .npy of $rows_done rows)" "--resume after freeing space: the undisturbed run's bytes"
    else
      fail "extract --resume after the disk was freed"; cat "$work/log2"
    fi
  fi
  # The writers of whole files: nothing under the final name, no .part left.
  rm -rf "${disk:?}"/*; mount -o remount,size=16k "$disk"
  for cmd in "index -o $disk/x.fxi --quiet $work/clean.npy|$disk/x.fxi" \
             "merge -o $disk/m.npy $work/shard1.npy $work/shard0.npy|$disk/m.npy" \
             "train-probe -o $disk/p.fxp --kind mean $work/clean.npy $work/labels.txt|$disk/p.fxp" \
             "pca transform -m $work/clean.pca -o $disk/t.npy $work/clean.npy|$disk/t.npy" \
             "pca fit -o $disk/f.pca -k 30 $work/clean.npy|$disk/f.pca"; do
    args=${cmd%|*} target=${cmd#*|}
    name=$(echo "$args" | awk '{print $1 ($1 == "pca" ? " " $2 : "")}')
    # Fill the disk to the last 4 kB first: every output here needs more.
    rm -rf "${disk:?}"/*
    head -c $((12 * 1024)) /dev/zero > "$disk/filler" 2> /dev/null
    # shellcheck disable=SC2086
    "$featx" $args > /dev/null 2> "$work/log"; rc=$?
    left=$(cd "$disk" && ls | grep -v '^filler$' | tr '\n' ' ')
    if [ $rc = 0 ]; then fail "$name on a full disk exited 0"
    elif ! one_line_error "$work/log" "$target"; then fail "$name, full disk: message"
    elif ! no_final "$target"; then fail "$name, full disk: final file"
    elif [ -n "$left" ]; then fail "$name, full disk: left $left"
    else row "$name, disk full (16 kB tmpfs)" "exit $rc: \`$(sed 's/|/\\|/g' "$work/log")\`" "no file left behind"
    fi
  done
  umount "$disk"; mounts=()
else
  skip "full disk (tmpfs)" "mount -t tmpfs is not permitted"
fi

# -- a file-size limit ------------------------------------------------------
# SIGXFSZ would end the process with no word; featx ignores it, so the
# write fails with EFBIG and is reported like a full disk.
mkdir -p "$work/fsize"
( ulimit -f 64; exec "$featx" extract -m "$model" -o "$work/fsize/out.npy" --quiet "$work"/in/* ) 2> "$work/log"; rc=$?
if [ $rc = 0 ]; then fail "extract under RLIMIT_FSIZE exited 0"
elif ! one_line_error "$work/log" "$work/fsize/out.npy.part: write failed (File too large)"; then fail "extract, RLIMIT_FSIZE: message (exit $rc)"
elif ! no_final "$work/fsize/out.npy"; then fail "extract, RLIMIT_FSIZE: final file"
elif ! "$featx" extract -m "$model" -o "$work/fsize/out.npy" --quiet --resume "$work"/in/* 2> "$work/log2" ||
     ! cmp -s "$work/fsize/out.npy" "$work/clean.npy"; then fail "extract --resume after RLIMIT_FSIZE"; cat "$work/log2"
else row "extract, RLIMIT_FSIZE 64 kB" "exit $rc: \`$(cat "$work/log")\`" "--resume without the limit: the undisturbed run's bytes"
fi

# -- unreadable inputs and a read-only folder (as nobody) -------------------
if [ $can_drop = 1 ]; then
  mkdir -p "$work/nobody/out" "$work/nobody/ro"
  cp "$images"/cat.bmp "$work/nobody/a_cat.bmp"; cp "$images"/cat.bmp "$work/nobody/b_locked.bmp"
  cp "$model" "$work/nobody/model.featx"
  chmod 000 "$work/nobody/b_locked.bmp"
  chown -R 65534:65534 "$work/nobody/out"
  chmod 555 "$work/nobody/ro"
  "${as_nobody[@]}" "$featx" extract -m "$work/nobody/model.featx" -o "$work/nobody/out/x.npy" --quiet \
    "$work/nobody/a_cat.bmp" "$work/nobody/b_locked.bmp" > /dev/null 2> "$work/log"; rc=$?
  if [ $rc != 1 ] || ! grep -q "b_locked.bmp.*Permission denied" "$work/log" ||
     [ "$(wc -l < "$work/nobody/out/x.npy.names.txt")" != 1 ] ||
     ! grep -q "b_locked.bmp" "$work/nobody/out/x.npy.errors.txt"; then
    fail "an unreadable input among readable ones"; cat "$work/log"
  else row "extract, an unreadable input (mode 000, run as nobody)" "exit 1: \`$(grep locked "$work/log" | head -1)\`" "the other image written; the failure in x.npy.errors.txt"
  fi
  chmod 000 "$work/nobody/model.featx"
  "${as_nobody[@]}" "$featx" extract -m "$work/nobody/model.featx" -o "$work/nobody/out/y.npy" --quiet "$work/nobody/a_cat.bmp" 2> "$work/log"; rc=$?
  if [ $rc = 0 ] || ! one_line_error "$work/log" "model.featx" || ! no_final "$work/nobody/out/y.npy"; then fail "an unreadable model"
  else row "extract, an unreadable model" "exit $rc: \`$(cat "$work/log")\`" "nothing written"
  fi
  chmod 644 "$work/nobody/model.featx"
  for cmd in "extract -m $work/nobody/model.featx -o $work/nobody/ro/x.npy --quiet $work/nobody/a_cat.bmp|$work/nobody/ro/x.npy" \
             "index -o $work/nobody/ro/x.fxi --quiet $work/clean.npy|$work/nobody/ro/x.fxi" \
             "pca fit -o $work/nobody/ro/x.pca -k 4 $work/clean.npy|$work/nobody/ro/x.pca"; do
    args=${cmd%|*} target=${cmd#*|}
    name=$(echo "$args" | awk '{print $1 ($1 == "pca" ? " " $2 : "")}')
    # shellcheck disable=SC2086
    "${as_nobody[@]}" "$featx" $args > /dev/null 2> "$work/log"; rc=$?
    if [ $rc = 0 ] || ! one_line_error "$work/log" "$work/nobody/ro/x" || [ -n "$(ls "$work/nobody/ro")" ]; then
      fail "$name into a read-only folder"
    else row "$name, read-only output folder (mode 555, as nobody)" "exit $rc: \`$(cat "$work/log")\`" "nothing written"
    fi
  done
else
  skip "unreadable inputs, read-only folder" "cannot run featx as nobody (setpriv)"
fi
if [ $can_mount = 1 ]; then
  ro=$work/romount; mkdir -p "$ro"
  mount -t tmpfs -o size=1m,ro tmpfs "$ro" && mounts+=("$ro")
  "$featx" extract -m "$model" -o "$ro/x.npy" --quiet "$work"/in/01_* 2> "$work/log"; rc=$?
  if [ $rc = 0 ] || ! one_line_error "$work/log" "$ro/x.npy" || [ -n "$(ls "$ro")" ]; then fail "extract onto a read-only file system"
  else row "extract, read-only file system (as root)" "exit $rc: \`$(cat "$work/log")\`" "nothing written"
  fi
  umount "$ro"; mounts=()
fi

# -- a killed run ------------------------------------------------------------
mkdir -p "$work/kill"
"$featx" extract -m "$model" -o "$work/kill/out.npy" --quiet --batch 1 --threads 1 "$work"/in/* 2> /dev/null &
pid=$!
for _ in $(seq 1 200); do
  [ -s "$work/kill/out.npy.names.txt.part" ] && break; sleep 0.05
done
kill -KILL $pid 2> /dev/null; wait $pid 2> /dev/null; rc=$?
if [ -e "$work/kill/out.npy" ]; then fail "a killed run left out.npy under its final name"
elif ! "$featx" extract -m "$model" -o "$work/kill/out.npy" --quiet --resume "$work"/in/* 2> "$work/log" ||
     ! cmp -s "$work/kill/out.npy" "$work/clean.npy"; then fail "--resume after SIGKILL"; cat "$work/log"
else row "extract, SIGKILL mid-run" "exit $rc; only .part files" "--resume: the undisturbed run's bytes"
fi

echo
echo "| fault | what featx did | what was kept |"
echo "| --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
if [ $failures -gt 0 ]; then echo "fault_test: $failures failures"; exit 1; fi
if [ $skips -gt 0 ] && [ "${CI:-}" = true ]; then echo "fault_test: $skips groups skipped, not allowed in CI"; exit 1; fi
echo "fault_test: ok (${#rows[@]} cases, $skips skipped)"
