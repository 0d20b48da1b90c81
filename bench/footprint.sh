#!/usr/bin/env bash
# bench/footprint.sh: featx's footprint as Markdown tables (README's
# Footprint section, bench/RESULTS.md):
#   1. stripped size of examples/extract.cpp linked statically (-O2 -static,
#      strip) for x86-64 (with libjpeg or stb_image, with and without
#      OpenMP) and, cross-compiled with stb_image, aarch64, armv7 (NEON,
#      VFPv4, hard float) and riscv64; through include/ and through
#      single_include/featx/featx.hpp. Every binary runs the TF2 MobileNetV2
#      1.0/224 on one image (cross ones under qemu-user) and its printed
#      features must be within 1e-4 of the native x86-64 run.
#   2. peak RSS of that job (GNU time's "Maximum resident set size"): extract
#      with the model from a file (folded into RAM at load), from a prepacked
#      file (mmap, used in place) and examples/embedded_rom (the prepacked
#      model linked into .rodata), threads 1 and 2; the RAM part of it
#      (RssAnon, printed by embedded_rom); ONNX Runtime (onnxruntime-node
#      through bench/ort_bench.mjs, one run) and node's own baseline, and the
#      stripped size of the libonnxruntime.so it ships.
#   3. Plan::workspace_bytes() per width x resolution (bench/workspace_table.cpp
#      on the random test models), threads 1 and 2, and plan_bytes().
#   4. .featx file sizes, normal vs prepacked, per width (no goldens).
# Builds run one at a time (shared cores). Exit status 1 when a build, a run
# or a features check failed (the tables say which).
#
# Usage: bench/footprint.sh > footprint.md   (progress on stderr; 11 min on 2 busy cores)
# Needs: g++, libjpeg62-turbo-dev (libjpeg.a), libflatbuffers-dev, libstb-dev,
#   g++-aarch64-linux-gnu, g++-arm-linux-gnueabihf, g++-riscv64-linux-gnu,
#   qemu-user (a missing cross compiler or qemu makes its row "not built"),
#   /usr/bin/time, /usr/bin/python3 with numpy (the exporter), node with
#   tools/ort/node_modules (npm install --ignore-scripts in tools/ort).
# Env: FOOTPRINT_DIR (work dir, default build-footprint), FEATX_TEST_MODELS_DIR
#   (random test models, default build/test_models, made by the native CMake
#   build), FEATX_SHARED_DIR (default ../shared), FOOTPRINT_IMAGE (default
#   cat.bmp there), FOOTPRINT_TARGETS (default "aarch64 armv7 riscv64").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(mkdir -p "${FOOTPRINT_DIR:-build-footprint}" && cd "${FOOTPRINT_DIR:-build-footprint}" && pwd)
shared=${FEATX_SHARED_DIR:-$(cd .. && pwd)/shared}
test_models=${FEATX_TEST_MODELS_DIR:-$root/build/test_models}
image=${FOOTPRINT_IMAGE:-$shared/images/cat.bmp}
read -r -a targets <<< "${FOOTPRINT_TARGETS:-aarch64 armv7 riscv64}"
py=/usr/bin/python3
tf2=tflite_tf2_mobilenet_v2_1.0_224_ptq
tflite=$shared/models/tf2_mobilenet_v2_1.0_224_ptq.tflite
tolerance=1e-4
failures=0
bin=$out/bin models=$out/models logs=$out/logs
mkdir -p "$bin" "$models" "$logs"
log() { echo "footprint: $*" >&2; }
die() { echo "footprint: $*" >&2; exit 1; }
for f in "$image" "$tflite" /usr/bin/time; do [ -e "$f" ] || die "$f missing"; done
ls "$test_models"/random_a*_r*_*.featx > /dev/null 2>&1 ||
  die "no random test models in $test_models (build natively first: cmake --build build)"

# --- models -----------------------------------------------------------------
# The TF2 MobileNetV2 normal and prepacked, each with one golden (cat at
# 224x224, what embedded_rom checks), from a manifest of that one row.
log "exporting models"
golden=$out/golden_cat
mkdir -p "$golden"
head -1 tests/golden/manifest.tsv > "$golden/manifest.tsv"
awk -F'\t' -v c="${tf2}_cat_224x224" '$1 == c' tests/golden/manifest.tsv >> "$golden/manifest.tsv"
[ "$(wc -l < "$golden/manifest.tsv")" = 2 ] || die "tests/golden/manifest.tsv has no row ${tf2}_cat_224x224"
ln -sfn "$root/tests/golden/inputs" "$golden/inputs"
ln -sf "$root/tests/golden/${tf2}_cat_224x224.npy" "$golden/"
"$py" tools/make_test_models.py --out "$models" --golden-dir "$golden" --only "$tf2" "${tf2}_prepacked" > "$logs/models.log"
normal=$models/$tf2.featx prepacked=$models/${tf2}_prepacked.featx
"$py" tools/export_weights.py --tflite "$tflite" --onnx "$models/tf2_224.onnx" --size 224x224 \
  > "$logs/onnx.log" 2>&1 || die "ONNX export failed ($logs/onnx.log)"
# Sizes: no goldens, so the file is the weights (and the classifier for TF2).
widths=(0.35 0.5 0.75 1.0 1.3 1.4)
for w in "${widths[@]}"; do
  for kind in normal prepacked; do
    pack=(); [ $kind = prepacked ] && pack=(--prepacked)
    "$py" tools/export_weights.py --random --alpha "$w" --resolution 224 --seed 1 -o "$models/size_${w}_$kind.featx" \
      "${pack[@]}" > /dev/null
  done
done
"$py" tools/export_weights.py --tflite "$tflite" -o "$models/size_tf2_normal.featx" > /dev/null 2>&1
"$py" tools/export_weights.py --tflite "$tflite" -o "$models/size_tf2_prepacked.featx" \
  --prepacked > /dev/null 2>&1

# --- builds -----------------------------------------------------------------
# Cross builds see only the header-only libraries, each through its own
# symlink: -I/usr/include would put the host's glibc headers first.
mkdir -p "$out/inc"
for lib in flatbuffers stb; do ln -sfn "/usr/include/$lib" "$out/inc/$lib"; done
# The single header as <featx/featx.hpp>, the name extract.cpp includes.
mkdir -p "$out/single/featx"
ln -sf "$root/single_include/featx/featx.hpp" "$out/single/featx/featx.hpp"

declare -A size_of  # build name -> stripped bytes, or a reason it has none
# build NAME CXX STRIP FLAGS...: extract.cpp, -O2 -static, stripped to $bin/NAME.
build() {
  local name=$1 cxx=$2 strip=$3; shift 3
  if ! command -v "$cxx" > /dev/null || ! command -v "$strip" > /dev/null; then
    size_of[$name]="no $cxx"; return
  fi
  log "building $name"
  # libgomp.a warns that it may dlopen at run time; featx never makes it.
  if "$cxx" -std=c++17 -O2 -static examples/extract.cpp "$@" -o "$bin/$name" > "$logs/$name.log" 2>&1 &&
     "$strip" "$bin/$name"; then
    size_of[$name]=$(stat -c %s "$bin/$name")
  else
    size_of[$name]="build failed"; failures=$((failures + 1))
    log "build $name failed: $logs/$name.log"
  fi
}
omp_variants=("omp:-fopenmp" "seq:")
for v in "${omp_variants[@]}"; do
  build "x86-64_jpeg_${v%%:*}" g++ strip -DFEATX_WITH_LIBJPEG ${v#*:} -I include -ljpeg
  build "x86-64_stb_${v%%:*}" g++ strip ${v#*:} -I include
  build "x86-64_single_${v%%:*}" g++ strip ${v#*:} -I "$out/single"
done
declare -A qemu_of
for t in "${targets[@]}"; do
  arch=()
  case $t in
    aarch64) triple=aarch64-linux-gnu qemu_of[$t]=qemu-aarch64 ;;
    armv7) triple=arm-linux-gnueabihf qemu_of[$t]=qemu-arm
      arch=(-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard -Wno-psabi) ;;
    riscv64) triple=riscv64-linux-gnu qemu_of[$t]=qemu-riscv64 ;;
    *) die "unknown target $t (aarch64, armv7, riscv64)" ;;
  esac
  for v in "${omp_variants[@]}"; do
    build "${t}_stb_${v%%:*}" "$triple-g++" "$triple-strip" "${arch[@]}" ${v#*:} -I include -isystem "$out/inc"
    build "${t}_single_${v%%:*}" "$triple-g++" "$triple-strip" "${arch[@]}" ${v#*:} -I "$out/single"
  done
done

# --- runs: every binary on the image, features against the native run ------
declare -A features_of  # build name -> "f[0] f[1] f[last]", or a reason
# features NAME: runs $bin/NAME (under qemu for a cross target) on one image.
features() {
  local name=$1 target=${1%%_*} runner=(env OMP_NUM_THREADS=1)
  [[ ${size_of[$name]} =~ ^[0-9]+$ ]] || { features_of[$name]="—"; return; }
  if [ "$target" != x86-64 ]; then
    command -v "${qemu_of[$target]}" > /dev/null || { features_of[$name]="no ${qemu_of[$target]}"; return; }
    # qemu's default arm CPU has every extension; an A15 faults on what armv7 lacks.
    [ "$target" = armv7 ] && runner+=(QEMU_CPU=cortex-a15)
    runner+=("${qemu_of[$target]}")
  fi
  log "running $name"
  local line
  if line=$("${runner[@]}" "$bin/$name" "$normal" "$image" 2> "$logs/$name.run.log"); then
    # "1280 features, workspace N bytes: f0 f1 ... flast"
    features_of[$name]=$(echo "$line" | awk '{ print $6, $7, $9 }')
  else
    features_of[$name]="run failed"; failures=$((failures + 1)); log "run $name failed: $logs/$name.run.log"
  fi
}
for name in "${!size_of[@]}"; do features "$name"; done
reference=${features_of[x86-64_stb_omp]:-}
[[ $reference =~ ^[0-9.-]+\ [0-9.-]+\ [0-9.-]+$ ]] || die "the native run x86-64_stb_omp failed: $reference"

# The largest difference of each run's three printed values from the native run.
declare -A diff_of
for name in "${!features_of[@]}"; do
  f=${features_of[$name]}
  [[ $f =~ ^[0-9.-]+\ [0-9.-]+\ [0-9.-]+$ ]] || continue
  diff_of[$name]=$(awk -v a="$f" -v b="$reference" 'BEGIN {
    split(a, x, " "); split(b, y, " "); m = 0
    for (i = 1; i <= 3; i++) { e = x[i] - y[i]; if (e < 0) e = -e; if (e > m) m = e }
    if (m == 0) print "0"; else printf "%.0e", m }')
  if awk -v d="${diff_of[$name]}" -v t=$tolerance 'BEGIN { exit !(d > t) }'; then
    diff_of[$name]="FAIL ${diff_of[$name]}"; failures=$((failures + 1)); log "$name: features off by ${diff_of[$name]}"
  fi
done
# cell NAME: "size kB (max |diff| vs native)" for the size table.
cell() {
  local s=${size_of[$1]:-not built}
  if ! [[ $s =~ ^[0-9]+$ ]]; then echo "$s"; return; fi
  echo "$((s / 1000)) (${diff_of[$1]:-${features_of[$1]:-not run}})"
}

# --- peak RSS -----------------------------------------------------------------
# peak_kib CMD...: the median of 3 runs' peak RSS in KiB (the caller's env).
# GNU time's line shares the command's stderr: it is found by its tag.
peak_kib() {
  local runs=() r
  for _ in 1 2 3; do
    r=$(/usr/bin/time -f "peak_kib %M %x" "$@" 2>&1 > /dev/null | awk '$1 == "peak_kib" && $3 == 0 { print $2 }')
    [[ $r =~ ^[0-9]+$ ]] || { echo "failed"; return; }
    runs+=("$r")
  done
  printf "%s\n" "${runs[@]}" | sort -n | sed -n 2p
}
# MiB from KiB, as bench/RESULTS.md and docs/embedded.md give RSS.
mib() { [[ $1 =~ ^[0-9]+$ ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "$1"; }

extract=$bin/x86-64_jpeg_omp
[[ ${size_of[x86-64_jpeg_omp]} =~ ^[0-9]+$ ]] || die "x86-64_jpeg_omp not built: no RSS figures"
log "peak RSS"
declare -A rss
for t in 1 2; do
  rss[file_$t]=$(OMP_NUM_THREADS=$t peak_kib "$extract" "$normal" "$image")
  rss[prepacked_$t]=$(OMP_NUM_THREADS=$t peak_kib "$extract" "$prepacked" "$image")
done
# examples/embedded_rom: the same model linked into .rodata (its stored
# golden input instead of a decoded image); also Model::load of either file,
# for its RssAnon (RAM: heap, stacks) / RssFile (the model's pages) split.
rom_note=""
if [ -f examples/embedded_rom.cpp ] && [ -f examples/embedded_rom_model.S ]; then
  log "building embedded_rom"
  if g++ -c -DFEATX_ROM_MODEL="\"$prepacked\"" examples/embedded_rom_model.S -o "$bin/rom_model.o" \
       > "$logs/embedded_rom.log" 2>&1 &&
     g++ -std=c++17 -O2 -static -fopenmp -I include examples/embedded_rom.cpp "$bin/rom_model.o" \
       -o "$bin/embedded_rom" >> "$logs/embedded_rom.log" 2>&1 && strip "$bin/embedded_rom"; then
    for t in 1 2; do rss[rom_$t]=$(OMP_NUM_THREADS=$t peak_kib "$bin/embedded_rom"); done
    # "peak_rss_kib: P (RssAnon A KiB, RssFile F KiB at exit)"
    anon() { OMP_NUM_THREADS=1 "$bin/embedded_rom" "$@" 2> /dev/null | awk '/^peak_rss_kib/ { print $4 }' || true; }
    rss[anon_file]=$(anon "$normal") rss[anon_prepacked]=$(anon "$prepacked") rss[anon_rom]=$(anon)
  else
    rom_note="embedded_rom build failed"; failures=$((failures + 1))
  fi
else
  rom_note="examples/embedded_rom.cpp not there yet"
fi
ort=$root/tools/ort/node_modules/onnxruntime-node
ort_lib=$(find "$ort" -path '*linux/x64/libonnxruntime.so*' -type f 2> /dev/null | head -1)
ort_libs=""  # "linux/x64 S kB (stripped again: T kB), ..."
if [ -n "$ort_lib" ] && command -v node > /dev/null; then
  ort_version=$(node -p "require('$ort/package.json').version")
  for arch in x64:strip arm64:aarch64-linux-gnu-strip; do
    lib=$(find "$ort" -path "*linux/${arch%%:*}/libonnxruntime.so*" -type f | head -1)
    [ -n "$lib" ] || continue
    ort_libs+="${ort_libs:+, }linux/${arch%%:*} $(( $(stat -c %s "$lib") / 1000 )) kB"
    if command -v "${arch#*:}" > /dev/null && "${arch#*:}" -o "$out/libonnxruntime.stripped" "$lib"; then
      ort_libs+=" (stripped again: $(( $(stat -c %s "$out/libonnxruntime.stripped") / 1000 )) kB)"
    fi
  done
  ort_binding=$(stat -c %s "$(dirname "$ort_lib")/onnxruntime_binding.node")
  for t in 1 2; do
    rss[ort_$t]=$(peak_kib node bench/ort_bench.mjs -m "$models/tf2_224.onnx" --threads $t --runs 1 --warmup 0 \
                  --input tests/golden/inputs/cat_224x224.npy)
  done
  rss[node]=$(peak_kib node -e '')
  rss[node_ort]=$(peak_kib node -e "require('$ort')")
else
  ort_version="not installed (npm install --ignore-scripts in tools/ort)"
fi

for k in "${!rss[@]}"; do
  [[ ${rss[$k]} =~ ^[0-9]+$ ]] || { failures=$((failures + 1)); log "peak RSS $k: ${rss[$k]:-no figure}"; }
done

# --- workspace table ----------------------------------------------------------
log "building workspace_table"
g++ -std=c++17 -O1 -fopenmp -Wall -Wextra -I include bench/workspace_table.cpp -o "$bin/workspace_table" \
  > "$logs/workspace_table.log" 2>&1 || die "workspace_table build failed ($logs/workspace_table.log)"

# --- report -------------------------------------------------------------------
mbytes() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.2f", b / 1e6 }'; }
cpu=$(lscpu | awk -F: '/^Model name/ { sub(/^ +/, "", $2); print $2; exit }')
echo "Footprint, $(date -u +%Y-%m-%d), $cpu ($(nproc) cores), featx $(git describe --always --dirty)," \
  "$(g++ --version | head -1); \`bench/footprint.sh\`"
dirty=$(git status --porcelain -- include single_include examples | awk '{ print $2 }' | tr '\n' ' ')
[ -z "$dirty" ] || echo "(uncommitted in the tree measured: $dirty)"
echo
echo "Stripped static \`examples/extract.cpp\` (\`-O2 -static\`, strip), kB; in brackets the largest"
echo "difference of its printed features (3 values) on $(basename "$image") from the native x86-64 stb_image"
echo "run (\`$(basename "$normal")\`; cross binaries under qemu-user, 1 thread; must be <= $tolerance):"
echo
echo "| target | include/, OpenMP | include/, no OpenMP | single header, OpenMP | single header, no OpenMP |"
echo "| --- | --- | --- | --- | --- |"
echo "| x86-64, libjpeg | $(cell x86-64_jpeg_omp) | $(cell x86-64_jpeg_seq) | — | — |"
for t in x86-64 "${targets[@]}"; do
  label=$t; [ "$t" = x86-64 ] && label="x86-64, stb_image"
  [ "$t" = armv7 ] && label="armv7 (neon-vfpv4, hard float)"
  echo "| $label | $(cell "${t}_stb_omp") | $(cell "${t}_stb_seq") | $(cell "${t}_single_omp") | $(cell "${t}_single_seq") |"
done
echo
echo "Peak RSS (GNU time, median of 3), MiB, one image ($(basename "$image")) through the TF2 MobileNetV2 1.0/224:"
echo
echo "| | threads 1 | threads 2 | of it RAM (RssAnon at exit), 1 thread |"
echo "| --- | --- | --- | --- |"
echo "| featx extract, model file (\`Model::load\`, folded into RAM) | $(mib "${rss[file_1]}") | $(mib "${rss[file_2]}") | $(mib "${rss[anon_file]:-—}") |"
echo "| featx extract, prepacked file (mmap, in place) | $(mib "${rss[prepacked_1]}") | $(mib "${rss[prepacked_2]}") | $(mib "${rss[anon_prepacked]:-—}") |"
if [ -z "$rom_note" ]; then
  echo "| featx embedded_rom, prepacked model in .rodata (\`from_embedded\`) | $(mib "${rss[rom_1]}") | $(mib "${rss[rom_2]}") | $(mib "${rss[anon_rom]}") |"
else
  echo "| featx, model from ROM | $rom_note | | |"
fi
if [ -n "${rss[ort_1]:-}" ]; then
  echo "| ONNX Runtime $ort_version (node, bench/ort_bench.mjs, 1 run) | $(mib "${rss[ort_1]}") | $(mib "${rss[ort_2]}") | |"
  echo "| node alone (\`node -e ''\`) / node with onnxruntime-node loaded | $(mib "${rss[node]}") / $(mib "${rss[node_ort]}") | | |"
fi
echo
echo "The model file is $(mbytes "$normal") MB ($(mbytes "$prepacked") MB prepacked), one golden included;"
echo "the RssAnon column is embedded_rom's (same load, its stored input instead of a decoded image)."
if [ -n "${ort_lib:-}" ]; then
  echo "ONNX Runtime's libonnxruntime.so as onnxruntime-node ships it: $ort_libs;" \
    "plus onnxruntime_binding.node (linux/x64) $((ort_binding / 1000)) kB, and node."
fi
echo
# One model per width x resolution: the prepacked copies plan the same.
workspace_models=()
for m in "$test_models"/random_a*_r*_*.featx; do [[ $m == *_prepacked.featx ]] || workspace_models+=("$m"); done
"$bin/workspace_table" "${workspace_models[@]}" || { failures=$((failures + 1)); echo "(workspace_table failed)"; }
echo
echo ".featx file sizes, MB, no goldens: normal (batch norm stored, folded at load) / prepacked (folded, packed, 64-byte aligned)"
echo
echo "| width | 0.35 | 0.5 | 0.75 | 1.0 | 1.3 | 1.4 | 1.0 TF2 (with its 1001-class classifier) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
row="| normal / prepacked |"
for w in "${widths[@]}"; do row+=" $(mbytes "$models/size_${w}_normal.featx") / $(mbytes "$models/size_${w}_prepacked.featx") |"; done
echo "$row $(mbytes "$models/size_tf2_normal.featx") / $(mbytes "$models/size_tf2_prepacked.featx") |"

if [ $failures -ne 0 ]; then
  log "$failures failure(s): see the tables and $logs"
  exit 1
fi
