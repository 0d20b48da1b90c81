#!/usr/bin/env bash
# The featx CLI contract (../shared/DESIGN.md): outputs readable by numpy, and
# every bad input gets exactly one line on stderr naming the file, plus a
# non-zero exit status, never a crash (exit status >= 128 is a signal).
set -u
featx=$1 models=$2 shared=$3
py=${FEATX_PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."   # tools/ paths are relative to the repo root
model=$models/random_a0.35_r96_s1_c0.featx
classifier=$models/random_a1.0_r224_s1_c10.featx
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_error NAME_IN_MESSAGE CMD...: non-zero (not a signal), one stderr line containing NAME.
expect_error() {
  local name=$1; shift
  "$@" > "$tmp/out" 2> "$tmp/err"; local rc=$?
  local lines; lines=$(wc -l < "$tmp/err")
  if [ $rc -eq 0 ]; then fail "$* succeeded"; return; fi
  if [ $rc -ge 128 ]; then fail "$* crashed (status $rc)"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$*: $lines stderr lines: $(cat "$tmp/err")"; return; fi
  grep -qF -- "$name" "$tmp/err" || fail "$*: error does not name $name: $(cat "$tmp/err")"
  echo "ok ($rc): $(cat "$tmp/err")"
}

# A synthetic image, written by Python (PIL) so the CLI has something to read.
"$py" - "$tmp" <<'PYEOF'
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(d + "/a.png")
Image.fromarray(rng.integers(0, 256, (50, 50), dtype=np.uint8)).save(d + "/grey.jpg")
np.save(d + "/batch.npy", rng.random((2, 96, 96, 3), dtype=np.float32))
np.save(d + "/f64.npy", rng.random((96, 96, 3)))
np.save(d + "/shape.npy", rng.random((96, 96, 4), dtype=np.float32))
np.save(d + "/range.npy", (rng.random((96, 96, 3), dtype=np.float32) * 2 - 1))
PYEOF

# --- outputs ---------------------------------------------------------------
"$featx" extract -m "$model" -o "$tmp/f.npy" "$tmp/a.png" "$tmp/grey.jpg" "$tmp/batch.npy" || fail "extract to npy"
"$py" -c "
import numpy as np, sys
a = np.load('$tmp/f.npy'); assert a.shape == (4, 1280) and a.dtype == np.float32, a.shape
names = open('$tmp/f.npy.names.txt').read().split()
assert names[0].endswith('a.png') and names[3].endswith('batch.npy[1]'), names
assert np.isfinite(a).all() and (a > 0).any()
" || fail "npy output unreadable or wrong"
"$featx" extract -m "$model" --batch 2 --threads 2 -o "$tmp/f2.npy" "$tmp/a.png" "$tmp/grey.jpg" "$tmp/batch.npy" || fail "extract batch 2"
cmp -s "$tmp/f.npy" "$tmp/f2.npy" || fail "batch/threads changed the features"
"$featx" extract -m "$model" -o "$tmp/f.csv" "$tmp/batch.npy" || fail "extract csv"
"$py" -c "
import csv, numpy as np
rows = list(csv.reader(open('$tmp/f.csv')))
assert len(rows) == 2 and len(rows[0]) == 1281
a = np.load('$tmp/f.npy')
assert np.array_equal(np.array(rows[1][1:], dtype=np.float32), a[3])
" || fail "csv output"
"$featx" extract -m "$model" --pool max --layer expanded_conv_5 -o "$tmp/f.jsonl" "$tmp/a.png" || fail "extract jsonl"
"$py" -c "
import json
r = [json.loads(l) for l in open('$tmp/f.jsonl')]
assert len(r) == 1 and r[0]['name'].endswith('a.png') and len(r[0]['features']) == r[0]['shape'][0]
" || fail "jsonl output"
"$featx" extract -m "$model" --pool none -o "$tmp/map.npy" "$tmp/batch.npy" || fail "extract spatial"
"$py" -c "
import numpy as np
m = np.load('$tmp/map.npy'); assert m.shape == (2, 3, 3, 1280), m.shape
" || fail "spatial map shape"
"$featx" extract -m "$model" "$tmp" > "$tmp/dir.jsonl" 2>/dev/null || true
"$featx" inspect "$model" | grep -q "feature_dim: 1280" || fail "inspect"
"$featx" classify -m "$classifier" -k 3 "$tmp/a.png" | grep -qE "^  1	" || fail "classify"
bench_out=$("$featx" bench -m "$model" --runs 3)
for key in median min p90; do
  grep -qE "^featx_ms_$key [0-9.]+$" <<< "$bench_out" || fail "bench output: featx_ms_$key"
done

# --- bad input --------------------------------------------------------------
expect_error "missing.featx" "$featx" extract -m "$tmp/missing.featx" "$tmp/a.png"
: > "$tmp/empty.featx"
expect_error "empty.featx" "$featx" inspect "$tmp/empty.featx"
head -c 100000 "$model" > "$tmp/trunc.featx"
expect_error "trunc.featx" "$featx" inspect "$tmp/trunc.featx"
head -c 5000 /dev/urandom > "$tmp/random.featx"
expect_error "random.featx" "$featx" inspect "$tmp/random.featx"
cp "$model" "$tmp/wrongid.featx"; printf 'XXXX' | dd of="$tmp/wrongid.featx" bs=1 seek=4 conv=notrunc 2>/dev/null
expect_error "wrongid.featx" "$featx" inspect "$tmp/wrongid.featx"
cp "$model" "$tmp/flip.featx"
size=$(stat -c %s "$model")
printf '\x5a' | dd of="$tmp/flip.featx" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_error "flip.featx" "$featx" inspect "$tmp/flip.featx"
if [ -f "$shared/models/mobilenet_v2_1.0_224_quant.tflite" ]; then
  expect_error "quant.tflite" "$featx" inspect "$shared/models/mobilenet_v2_1.0_224_quant.tflite"
fi
echo "this is not a jpeg" > "$tmp/text.jpg"
expect_error "text.jpg" "$featx" extract -m "$model" "$tmp/text.jpg"
head -c 300 /dev/urandom > "$tmp/noise.png"
expect_error "noise.png" "$featx" extract -m "$model" "$tmp/noise.png"
head -c 200 "$tmp/a.png" > "$tmp/cut.png"
expect_error "cut.png" "$featx" extract -m "$model" "$tmp/cut.png"
# --max-image-pixels: a.png (80x60 = 4800 pixels) refused on its header and
# listed in the errors file, grey.jpg (2500) extracted; exit 1.
"$featx" extract -m "$model" --max-image-pixels 4000 -o "$tmp/lim.npy" "$tmp/a.png" "$tmp/grey.jpg" 2> "$tmp/err"
[ $? -eq 1 ] || fail "--max-image-pixels: a refused image must give exit 1"
"$py" -c "
import numpy as np
assert np.load('$tmp/lim.npy').shape == (1, 1280)
assert open('$tmp/lim.npy.names.txt').read().split() == ['$tmp/grey.jpg']
assert open('$tmp/lim.npy.errors.txt').read() == '$tmp/a.png\t$tmp/a.png: image too large (80x60; limits 16384 per side, 4000 pixels)\n'
" || fail "--max-image-pixels: not a.png refused and grey.jpg extracted: $(cat "$tmp/err")"
expect_error "--max-image-pixels" "$featx" extract -m "$model" --max-image-pixels 0 "$tmp/a.png"
# JPEGs cut short (even by just the EOI marker), corrupt, zero-size, oversized.
"$py" - "$tmp" <<'PYEOF'
import sys
d = sys.argv[1]
j = open(d + "/grey.jpg", "rb").read()
sof = j.index(b"\xff\xc0")
def patched(at, b):
    x = bytearray(j)
    x[at:at + len(b)] = b
    return bytes(x)
for name, data in (("cut", j[:len(j) // 2]), ("noeoi", j[:-2]), ("zero", patched(sof + 5, b"\0\0")),
                   ("huge", patched(sof + 5, b"\x75\x30\x75\x30")), ("corrupt", patched(sof + 4, b"\x0c"))):
    open(f"{d}/{name}.jpg", "wb").write(data)
PYEOF
for f in cut noeoi zero huge corrupt; do expect_error "$f.jpg" "$featx" extract -m "$model" "$tmp/$f.jpg"; done
for p in tf tf-antialias keras fast; do
  "$featx" extract -m "$model" --preprocess $p -o "$tmp/p_$p.npy" "$tmp/grey.jpg" "$tmp/a.png" || fail "--preprocess $p"
done
"$py" -c "
import numpy as np
a, b = np.load('$tmp/p_tf.npy'), np.load('$tmp/p_keras.npy')
assert a.shape == b.shape == (2, 1280) and not np.array_equal(a, b)
" || fail "--preprocess keras gives the same features as tf"
"$featx" classify -m "$classifier" --preprocess keras -k 1 "$tmp/a.png" | grep -qE "^  1	" || fail "classify --preprocess"
expect_error "'pil'" "$featx" extract -m "$model" --preprocess pil "$tmp/a.png"
"$featx" --version | grep -qE "^jpeg decoder: (libjpeg|stb_image)" || fail "--version names the JPEG decoder"
"$featx" inspect "$model" | grep -qE "^jpeg decoder: " || fail "inspect names the JPEG decoder"
# What it chose for this CPU and why (cpu_info.hpp, tuning.hpp); FEATX_L2_BYTES
# reaches the plan: bands of 5/16 of 2 MiB, and other band rows.
"$featx" inspect "$model" | grep -qE "^microarchitecture: " || fail "inspect names the microarchitecture"
"$featx" inspect "$model" | grep -qE "^caches: L1d .* L2 .* per core" || fail "inspect gives the caches"
"$featx" inspect "$model" | grep -qE "^tiles: 1x1 conv [0-9]+ pixels x [0-9]+ channels|^tiles: scalar" || fail "inspect gives the tile"
FEATX_L2_BYTES=2M "$featx" inspect "$model" | grep -q "^tuning: for an L2 of 2 MiB (FEATX_L2_BYTES).* bands of 640 KiB" ||
  fail "inspect: FEATX_L2_BYTES sets the tuning"
[ "$(FEATX_L2_BYTES=2M "$featx" inspect "$model" | grep "^band rows")" != \
  "$(FEATX_L2_BYTES=256K "$featx" inspect "$model" | grep "^band rows")" ] || fail "inspect: band rows follow L2"
"$featx" inspect "$model" | grep -qE "^workspace: [0-9]+ bytes at [0-9]+x[0-9]+, batch 1, 1 thread" || fail "inspect gives the workspace"
"$featx" inspect "$model" | grep -q "^weights: folded and packed at load" || fail "inspect: a normal model's weights"
if [ -f "$models/random_a0.35_r96_s1_c0_prepacked.featx" ]; then
  "$featx" inspect "$models/random_a0.35_r96_s1_c0_prepacked.featx" | grep -q "^weights: prepacked" || fail "inspect: a prepacked model"
fi
expect_error "f64.npy" "$featx" extract -m "$model" "$tmp/f64.npy"
expect_error "shape.npy" "$featx" extract -m "$model" "$tmp/shape.npy"
expect_error "range.npy" "$featx" extract -m "$model" "$tmp/range.npy"
expect_error "nothere.jpg" "$featx" extract -m "$model" "$tmp/nothere.jpg"
expect_error "nope" "$featx" extract -m "$model" --layer nope "$tmp/a.png"
expect_error "classifier" "$featx" classify -m "$model" "$tmp/a.png"
expect_error "median" "$featx" extract -m "$model" --pool median "$tmp/a.png"
"$featx" verify "$model" | grep -q "^PASS" || fail "verify of a model with goldens"
"$py" tools/export_weights.py --random --alpha 0.35 --resolution 96 --seed 3 -o "$tmp/plain.featx" > /dev/null || fail "export"
expect_error "no golden" "$featx" verify "$tmp/plain.featx"
expect_error "--threads" "$featx" extract -m "$model" --threads 0 "$tmp/a.png"
expect_error "x.txt" "$featx" extract -m "$model" -o "$tmp/x.txt" "$tmp/a.png"
# Each command takes its own options: another's is named with the command, as typed.
expect_error "featx extract: option --whiten does not apply" "$featx" extract -m "$model" --whiten "$tmp/a.png"
expect_error "featx merge: option -k does not apply" "$featx" merge -o "$tmp/m.npy" -k 3 "$tmp/f.npy"
expect_error "featx bench: unknown option --rnus" "$featx" bench -m "$model" --rnus 3
expect_error "featx inspect: option --model does not apply" "$featx" inspect --model="$model"
expect_error "option --faiss needs a value" "$featx" index -o "$tmp/x.fxi" "$tmp/f.npy" --faiss

if [ $failures -ne 0 ]; then echo "$failures CLI checks failed"; exit 1; fi
echo "all CLI checks passed"
