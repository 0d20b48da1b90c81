#!/usr/bin/env bash
# featx builds and passes without exceptions and RTTI (-fno-exceptions
# -fno-rtti, warnings as errors): the CLI (apps/featx, with libjpeg when its
# header exists) verifies a model's stored goldens, and the golden check
# examples/single_header.cpp passes built both through the include/ tree and
# through the single header. Also: the throwing convenience layer
# (featx::Error, load_model) is compiled out by itself when exceptions are
# off, and the core has no std::function, typeid or dynamic_cast.
#
# Usage: tests/no_exceptions_test.sh [CXX [MODELS_DIR [FLATBUFFERS_DIR STB_DIR]]]
#   defaults: c++, build/test_models, /usr/include, /usr/include
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-c++}
models=${2:-build/test_models}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
failures=0
model=$models/random_a0.35_r96_s1_c0.featx
[ -f "$model" ] || { echo "FAIL: $model not found (build the test models first)"; exit 1; }

# -isystem /usr/include would break libstdc++'s #include_next: only add others.
deps=()
for dir in "${3:-/usr/include}" "${4:-/usr/include}"; do
  [ "$dir" = /usr/include ] || deps+=(-isystem "$dir")
done
flags=(-std=c++17 -O2 -fopenmp -fno-exceptions -fno-rtti -Wall -Wextra -Werror)
jpeg=()
if printf '#include <cstdio>\n#include <jpeglib.h>\n' | "$cxx" -x c++ -fsyntax-only - 2> /dev/null; then
  jpeg=(-DFEATX_WITH_LIBJPEG)
fi

# The core: nothing that needs RTTI or type erasure (the generated schema
# header is FlatBuffers' code, checked by the compiles below).
core_hits=$(grep -rnE 'std::function|typeid|dynamic_cast' include/featx --include='*.hpp' || true)
if [ -n "$core_hits" ]; then
  echo "FAIL: include/featx uses std::function, typeid or dynamic_cast:"; echo "$core_hits"
  failures=$((failures + 1))
fi

declare -A pids
build() {  # build NAME ARGS...: in the background, two at a time at most
  local name=$1; shift
  "$cxx" "${flags[@]}" "$@" -o "$tmp/$name" > "$tmp/$name.log" 2>&1 &
  pids[$name]=$!
}
built() {
  if wait "${pids[$1]}"; then return 0; fi
  echo "FAIL: build $1 with -fno-exceptions -fno-rtti:"; head -30 "$tmp/$1.log"; failures=$((failures + 1)); return 1
}
run() {  # run LABEL CMD...
  local label=$1; shift
  if "$@" > "$tmp/run.log" 2>&1; then
    echo "ok: $label: $(grep -c '^PASS' "$tmp/run.log") goldens within tolerance"
  else
    echo "FAIL: $label:"; cat "$tmp/run.log"; failures=$((failures + 1))
  fi
}

jpeg_libs=()
[ ${#jpeg[@]} = 0 ] || jpeg_libs=(-ljpeg)
build cli -I include "${deps[@]}" "${jpeg[@]}" apps/featx/main.cpp "${jpeg_libs[@]}"
build multi -I include/featx -I include "${deps[@]}" examples/single_header.cpp
built cli && run "featx verify (CLI${jpeg:+, libjpeg})" "$tmp/cli" verify "$model"
build single -I single_include/featx examples/single_header.cpp
built multi && run "golden check through include/" "$tmp/multi" "$model"
built single && run "golden check through the single header" "$tmp/single" "$model"

# Without exceptions featx::Error must not exist (not a throw that fails to compile).
printf '#include "featx/featx.hpp"\nfeatx::Error* error_type_exists = nullptr;\n' > "$tmp/error.cpp"
if "$cxx" "${flags[@]}" -fsyntax-only -I include "${deps[@]}" "$tmp/error.cpp" 2> "$tmp/error.log"; then
  echo "FAIL: featx::Error exists under -fno-exceptions: the throwing layer was not compiled out"
  failures=$((failures + 1))
elif grep -qE "Error.*in namespace.*featx.*does not name a type|no type named.*Error.*in namespace.*featx" "$tmp/error.log"; then
  echo "ok: the throwing convenience layer is compiled out under -fno-exceptions"
else
  echo "FAIL: checking featx::Error under -fno-exceptions failed otherwise:"; head -10 "$tmp/error.log"
  failures=$((failures + 1))
fi

if [ $failures -ne 0 ]; then
  echo "no exceptions: $failures failure(s)"
  exit 1
fi
echo "-fno-exceptions -fno-rtti checks passed in $(( $(date +%s) - start )) s"
