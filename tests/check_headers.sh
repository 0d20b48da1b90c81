#!/usr/bin/env bash
# Every public header compiles on its own (includes what it uses), with
# warnings as errors: users include any one of them directly.
set -euo pipefail
cxx=$1 src=$2 flatbuffers_dir=$3 stb_dir=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# -isystem /usr/include would break libstdc++'s #include_next: only add others.
extra=()
for dir in "$flatbuffers_dir" "$stb_dir"; do
  [ "$dir" = /usr/include ] || extra+=(-isystem "$dir")
done
# With and without the libjpeg decoder (featx/image/jpeg_turbo.hpp), when its header exists.
configs=("")
printf '#include <cstdio>\n#include <jpeglib.h>\n' | "$cxx" -x c++ -fsyntax-only - 2> /dev/null &&
  configs+=("-DFEATX_WITH_LIBJPEG")
failures=0
while IFS= read -r header; do
  rel=${header#"$src/include/"}
  printf '#include "%s"\n#include "%s"\n' "$rel" "$rel" > "$tmp/tu.cpp"  # twice: include guards
  for config in "${configs[@]}"; do
    # Only headers that include image code see the macro (keeps this test's time).
    [ -n "$config" ] && [[ "$rel" != featx/image* && "$rel" != featx/featx.hpp ]] && continue
    if ! "$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -fopenmp -I "$src/include" \
         "${extra[@]}" $config "$tmp/tu.cpp" 2> "$tmp/err"; then
      echo "FAIL: $rel does not compile alone ($config):"; head -5 "$tmp/err"; failures=$((failures + 1))
    fi
  done
done < <(find "$src/include/featx" -name '*.hpp' ! -path '*/detail/*' | sort)
[ $failures -eq 0 ] && echo "every public header compiles alone"
exit $((failures > 0))
