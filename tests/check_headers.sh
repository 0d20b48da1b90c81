#!/usr/bin/env bash
# Every public header compiles on its own (includes what it uses), with
# warnings as errors: users include any one of them directly. The headers
# compile in parallel, one job per core (about 50 headers at 2-3 s each).
set -euo pipefail
cxx=$1 src=$2 flatbuffers_dir=$3 stb_dir=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# -isystem /usr/include would break libstdc++'s #include_next: only add others.
extra=""
for dir in "$flatbuffers_dir" "$stb_dir"; do
  [ "$dir" = /usr/include ] || extra+=" -isystem $dir"
done
# With and without the libjpeg decoder (featx/image/jpeg_turbo.hpp), when its header exists.
have_jpeg=0
printf '#include <cstdio>\n#include <jpeglib.h>\n' | "$cxx" -x c++ -fsyntax-only - 2> /dev/null && have_jpeg=1
jobs=()
while IFS= read -r header; do
  rel=${header#"$src/include/"}
  jobs+=("$rel|")
  # Only headers that include image code see the macro (keeps this test's time).
  if [ $have_jpeg = 1 ] && [[ "$rel" == featx/image* || "$rel" == featx/featx.hpp ]]; then
    jobs+=("$rel|-DFEATX_WITH_LIBJPEG")
  fi
done < <(find "$src/include/featx" -name '*.hpp' ! -path '*/detail/*' | sort)

compile_one() {  # "header|flags": prints FAIL lines, exits non-zero on failure
  local rel=${1%%|*} config=${1#*|} n
  n=$(printf '%s' "$1" | md5sum | cut -c1-12)
  printf '#include "%s"\n#include "%s"\n' "$rel" "$rel" > "$tmp/$n.cpp"  # twice: include guards
  # shellcheck disable=SC2086
  if ! "$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -fopenmp -I "$src/include" \
       $extra $config "$tmp/$n.cpp" 2> "$tmp/$n.err"; then
    echo "FAIL: $rel does not compile alone ($config):"; head -5 "$tmp/$n.err"; return 1
  fi
}
export -f compile_one; export cxx src extra tmp
if printf '%s\n' "${jobs[@]}" | xargs -d '\n' -P "$(nproc)" -I{} bash -c 'compile_one "$1"' _ {}; then
  echo "every public header compiles alone (${#jobs[@]} compilations)"
else
  exit 1
fi
