#!/usr/bin/env bash
# The single header (single_include/featx/featx.hpp) is fresh and needs
# nothing but the compiler and its standard library:
#   1. regenerated into a temp dir, it equals the committed one;
#   2. examples/single_header.cpp (plus a second TU including it, linked in:
#      no FEATX_IMPLEMENTATION needed) builds with -H, and every header the
#      compiler opened is the single header or belongs to the compiler or
#      libc (dpkg -S: libc6-dev, libstdc++-N-dev, libgcc-N-dev,
#      linux-libc-dev); one from /usr/include/flatbuffers, /usr/include/stb
#      or include/featx fails it;
#   3. that program checks the models' stored goldens (ONNX Runtime outputs)
#      within their tolerance: a random model and a real one;
#   4. tests/allocator_hooks.cpp: the allocator hooks reach featx and stb;
#      -fopenmp -DFEATX_NO_OPENMP leaves no OpenMP call (nm) and the goldens hold;
#   5. cross-built with aarch64-linux-gnu-g++ with only the cross compiler's
#      own include directories (-nostdinc: not even /usr/include, which
#      Debian's cross compiler searches last) and run under qemu-aarch64 on
#      the same models. Without the cross compiler or qemu this part prints
#      SKIP, unless FEATX_REQUIRE_AARCH64=1 (CI, after installing them).
#
# Usage: tests/single_header_test.sh [--fresh] [CXX [MODELS_DIR]]
#   --fresh     only step 1 (fast: the ctest single_header_fresh)
#   CXX         default c++; MODELS_DIR default build/test_models
# Env: FEATX_PYTHON (default /usr/bin/python3), AARCH64_CXX, QEMU_AARCH64.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fresh_only=0
if [ "${1:-}" = "--fresh" ]; then fresh_only=1; shift; fi
cxx=${1:-c++}
models=${2:-build/test_models}
python=${FEATX_PYTHON:-/usr/bin/python3}
header=single_include/featx/featx.hpp
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 1. Fresh.
[ -f "$header" ] || { echo "FAIL: $header missing: run $python tools/make_single_header.py"; exit 1; }
"$python" tools/make_single_header.py --out "$tmp/fresh/featx.hpp" > /dev/null
if ! cmp -s "$header" "$tmp/fresh/featx.hpp"; then
  diff -u "$header" "$tmp/fresh/featx.hpp" | head -20 || true
  echo "FAIL: $header is stale: run $python tools/make_single_header.py"
  exit 1
fi
echo "single header fresh ($(wc -c < "$header") bytes, $(wc -l < "$header") lines)"
[ $fresh_only = 1 ] && exit 0

start=$(date +%s)
failures=0
flags=(-std=c++17 -O2 -fopenmp -Wall -Wextra -Werror)
random_model=$models/random_a0.35_r96_s1_c0.featx
real_model=$models/tflite_tf2_mobilenet_v2_1.0_224_ptq.featx
[ -f "$random_model" ] || { echo "FAIL: $random_model not found (build the test models first)"; exit 1; }
check_models=("$random_model")
if [ -f "$real_model" ]; then check_models+=("$real_model")
else echo "SKIP: $real_model not found (needs ../shared): random model only"; fi

# A second translation unit: any number of TUs include the header and link.
printf '#include "featx.hpp"\nint second_tu_panel_width() { return featx::kPanelWidth; }\n' > "$tmp/second_tu.cpp"

cross=${AARCH64_CXX:-aarch64-linux-gnu-g++}
qemu=${QEMU_AARCH64:-qemu-aarch64}
have_cross=1
for tool in "$cross" "$qemu"; do
  command -v "$tool" > /dev/null || { have_cross=0; missing=$tool; }
done
if [ $have_cross = 0 ] && [ "${FEATX_REQUIRE_AARCH64:-0}" = 1 ]; then
  echo "FAIL: $missing not found and FEATX_REQUIRE_AARCH64=1"; exit 1
fi

# Builds run two at a time in the background (2 cores); logs in $tmp/NAME.log.
declare -A pids
build() {  # build NAME COMPILER ARGS...
  local name=$1; shift
  "$@" -o "$tmp/$name" > "$tmp/$name.log" 2>&1 &
  pids[$name]=$!
}
built() {
  if wait "${pids[$1]}"; then return 0; fi
  echo "FAIL: build $1:"; head -30 "$tmp/$1.log"; failures=$((failures + 1)); return 1
}
run_goldens() {  # run_goldens LABEL CMD...: the golden check on every model
  local label=$1; shift
  for model in "${check_models[@]}"; do
    if "$@" "$model" > "$tmp/run.log" 2>&1; then
      echo "ok: $label $(basename "$model"): $(grep -c '^PASS' "$tmp/run.log") goldens within tolerance"
    else
      echo "FAIL: $label $(basename "$model"):"; cat "$tmp/run.log"; failures=$((failures + 1))
    fi
  done
}

# 2. Native, every opened header listed (-H writes them to stderr).
build native "$cxx" "${flags[@]}" -H -I single_include/featx examples/single_header.cpp "$tmp/second_tu.cpp"
if [ $have_cross = 1 ]; then
  # The cross compiler's own include directories, minus /usr/include and /usr/local/include.
  cross_dirs=()
  while IFS= read -r dir; do
    dir=$(realpath -m "$dir")
    case "$dir" in /usr/include|/usr/local/include) ;; *) cross_dirs+=(-isystem "$dir") ;; esac
  done < <("$cross" -x c++ -E -v - < /dev/null 2>&1 | sed -n '/^#include <...> search starts here:/,/^End of search list/p' | sed -n 's/^ //p')
  # libgomp.a warns that it may dlopen at run time; featx never makes it do so.
  build cross "$cross" "${flags[@]}" -static -nostdinc "${cross_dirs[@]}" -H -I single_include/featx \
    examples/single_header.cpp
fi

if built native; then
  grep '^\.' "$tmp/native.log" | sed 's/^\.* //' | sort -u | xargs realpath -m | sort -u > "$tmp/headers"
  single=$(realpath "$header")
  bad=$(grep -E "^(/usr/include/(flatbuffers|stb)/|$root/include/)" "$tmp/headers" || true)
  if [ -n "$bad" ]; then
    echo "FAIL: the single-header build opened headers it must carry itself:"; echo "$bad"
    failures=$((failures + 1))
  fi
  grep -vxF "$single" "$tmp/headers" > "$tmp/system_headers" || true
  if command -v dpkg > /dev/null; then
    # dpkg -S prints "pkg[:arch][, pkg...]: path"; an unowned path is an error line.
    dpkg -S $(cat "$tmp/system_headers") > "$tmp/owners" 2> "$tmp/unowned" || true
    foreign=$(sed 's/: \/.*//' "$tmp/owners" | tr ',' '\n' | sed 's/^ *//; s/:.*//' | sort -u |
              grep -vE '^(libc6-dev|libstdc\+\+-[0-9]+-dev|libgcc-[0-9]+-dev|linux-libc-dev|libgomp[0-9]*|libclang-common-[0-9]+-dev)$' || true)
    if [ -s "$tmp/unowned" ] || [ -n "$foreign" ]; then
      echo "FAIL: headers outside the compiler and libc:"; cat "$tmp/unowned"; echo "$foreign"
      failures=$((failures + 1))
    else
      echo "ok: native -H: $(wc -l < "$tmp/headers") headers: the single header and" \
           "$(sed 's/: \/.*//' "$tmp/owners" | sed 's/:[a-z0-9]*$//' | sort | uniq -c | awk '{printf "%s%s %s", s, $1, $2; s=", "}')"
    fi
  else
    echo "SKIP: package ownership of the headers: no dpkg (checked: none from flatbuffers, stb, include/)"
  fi
  run_goldens "native" "$tmp/native"
fi

build hooks "$cxx" -std=c++17 -O1 -fopenmp -Wall -Wextra -Werror -I single_include/featx tests/allocator_hooks.cpp
build no_openmp "$cxx" -std=c++17 -O1 -fopenmp -DFEATX_NO_OPENMP -Wall -Wextra -Werror -I single_include/featx \
  examples/single_header.cpp
if built hooks; then
  if "$tmp/hooks" "$random_model"; then :; else failures=$((failures + 1)); fi
fi
# FEATX_NO_OPENMP under -fopenmp: not one OpenMP call left in the program
# (the plain build above has them, so nm would see them), same goldens.
if built no_openmp; then
  omp_symbols='GOMP_|omp_get_|omp_set_'
  nm "$tmp/native" > "$tmp/native_symbols"  # (not piped into grep -q: pipefail and SIGPIPE)
  if ! grep -qE "$omp_symbols" "$tmp/native_symbols"; then
    echo "FAIL: nm finds no OpenMP symbol even in the -fopenmp build: the FEATX_NO_OPENMP check is blind"
    failures=$((failures + 1))
  elif nm "$tmp/no_openmp" | grep -E "$omp_symbols" > "$tmp/omp_left"; then
    echo "FAIL: -fopenmp -DFEATX_NO_OPENMP still calls OpenMP:"; head -5 "$tmp/omp_left"
    failures=$((failures + 1))
  else
    echo "ok: -fopenmp -DFEATX_NO_OPENMP: no OpenMP symbol in the program"
  fi
  check_models_all=("${check_models[@]}"); check_models=("$random_model")
  run_goldens "FEATX_NO_OPENMP" "$tmp/no_openmp"
  check_models=("${check_models_all[@]}")
fi

if [ $have_cross = 1 ]; then
  if built cross; then
    cross_bad=$(grep '^\.' "$tmp/cross.log" | sed 's/^\.* //' | xargs realpath -m | sort -u | grep -vxF "$(realpath "$header")" |
                while IFS= read -r h; do
                  ok=0
                  for ((i = 1; i < ${#cross_dirs[@]}; i += 2)); do
                    [[ "$h" == "${cross_dirs[i]}"/* ]] && ok=1
                  done
                  [ $ok = 1 ] || echo "$h"
                done)
    if [ -n "$cross_bad" ]; then
      echo "FAIL: the aarch64 build opened headers outside the cross compiler's:"; echo "$cross_bad"
      failures=$((failures + 1))
    else
      echo "ok: aarch64 -nostdinc build: every header from the cross toolchain or the single header"
    fi
    run_goldens "aarch64 (qemu)" "$qemu" "$tmp/cross"
  fi
else
  echo "SKIP: aarch64 cross build: $missing not found (apt-get install g++-aarch64-linux-gnu qemu-user)"
fi

if [ $failures -ne 0 ]; then
  echo "single header: $failures failure(s)"
  exit 1
fi
echo "single header checks passed in $(( $(date +%s) - start )) s"
