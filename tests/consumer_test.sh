#!/usr/bin/env bash
# featx as a dependency, the four ways docs/packaging.md documents: installed
# (cmake --install) and found with find_package(featx CONFIG), pulled in with
# add_subdirectory, with FetchContent from a local path, and with pkg-config.
# Each builds the examples/ consumer project (or extract.cpp alone with g++)
# and runs its tests on the TF2 MobileNetV2 from the shared folder.
#
#   bash tests/consumer_test.sh [WORK_DIR]     (default: a new folder under /tmp, removed after a pass)
# Env: FEATX_SHARED_DIR (default ../shared), FEATX_JOBS (2), FEATX_PYTHON.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
shared=${FEATX_SHARED_DIR:-$src/../shared}
# A folder of its own is removed after a pass; one named on the command line is kept.
if [ $# -ge 1 ]; then work=$1; keep=1; else work=$(mktemp -d /tmp/featx-consumer.XXXXXX); keep=0; fi
jobs=${FEATX_JOBS:-2}
python=${FEATX_PYTHON:-/usr/bin/python3}
mkdir -p "$work"
work=$(cd "$work" && pwd)
step="start"
trap 'echo "consumer_test: FAILED at: $step (work dir $work)" >&2' ERR
passed=0
pass() { passed=$((passed + 1)); echo "consumer_test: ok: $1"; }
# `! cmd` would not stop the script under set -e: this does.
absent() { if "$@"; then echo "consumer_test: should not have matched: $*" >&2; return 1; fi; }

tflite=$shared/models/tf2_mobilenet_v2_1.0_224_ptq.tflite
image=$shared/images/cat.bmp
[ -f "$tflite" ] || { echo "consumer_test: $tflite not found (set FEATX_SHARED_DIR)" >&2; exit 1; }

[ -f "$src/examples/extract.cpp" ] || { echo "consumer_test: $src/examples/extract.cpp not found" >&2; exit 1; }

# The TF2 MobileNetV2 with its goldens (read from tests/golden: no ONNX
# Runtime needed), and prepacked for embedded_rom.
step="export the model"
model_id=tflite_tf2_mobilenet_v2_1.0_224_ptq
model=$work/models/$model_id.featx
rom_model=$work/models/${model_id}_prepacked.featx
FEATX_SHARED_DIR=$shared "$python" "$src/tools/make_test_models.py" --out "$work/models" \
  --only $model_id ${model_id}_prepacked > "$work/export.log" 2>&1

# Header-only: installing needs no compiling (no CLI, no tests).
step="install featx into $work/prefix"
prefix=$work/prefix
cmake -S "$src" -B "$work/featx-build" -DFEATX_BUILD_TESTS=OFF -DFEATX_BUILD_CLI=OFF > "$work/featx-build.log"
cmake --install "$work/featx-build" --prefix "$prefix" > "$work/install.log"
for f in include/featx/featx.hpp share/cmake/featx/featxConfig.cmake \
         share/cmake/featx/featxConfigVersion.cmake share/cmake/featx/featxTargets.cmake share/pkgconfig/featx.pc; do
  [ -f "$prefix/$f" ] || { echo "consumer_test: $prefix/$f not installed" >&2; false; }
done
pass "installed"

for mode in package subdirectory fetchcontent; do
  step="examples via $mode: configure"
  dir=$work/examples-$mode
  # single_header uses no featx target, and embedded_rom and the vectors
  # examples link it as extract does: they are built once, in the package mode.
  extra=(-DFEATX_EXAMPLES_SINGLE_HEADER=OFF -DFEATX_EXAMPLES_VECTORS=OFF)
  [ "$mode" = package ] && extra=(-DCMAKE_PREFIX_PATH="$prefix" -DFEATX_EXAMPLE_ROM_MODEL="$rom_model")
  cmake -S "$src/examples" -B "$dir" -DFEATX_EXAMPLES_FEATX=$mode -DFEATX_SOURCE_DIR="$src" \
        -DFEATX_EXAMPLE_MODEL="$model" -DFEATX_EXAMPLE_IMAGE="$image" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
        "${extra[@]}" > "$dir.configure.log"
  if [ "$mode" = package ]; then
    step="examples via package: featx found in the installed tree, its headers used"
    grep -qx "featx_DIR:PATH=$prefix/share/cmake/featx" "$dir/CMakeCache.txt"
    grep -qE -- "(-I|-isystem )$prefix/include" "$dir/compile_commands.json"
    absent grep -qE -- "(-I|-isystem )$src/include" "$dir/compile_commands.json"
  else
    # A consumer's add_subdirectory/FetchContent builds no featx program it did not ask for.
    step="examples via $mode: featx's CLI and tests not built"
    cmake --build "$dir" --target help > "$dir.targets"
    absent grep -qE '(^|[ .])(featx_cli|featx_tests|featx_test_models)($|[ :])' "$dir.targets"
  fi
  step="examples via $mode: build"
  cmake --build "$dir" -j"$jobs" > "$dir.build.log"
  step="examples via $mode: ctest"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error
  if [ "$mode" = package ]; then
    # None of them may have been skipped (Eigen or the photos not found).
    step="examples via package: every example registered"
    ctest --test-dir "$dir" -N > "$dir.tests"
    for t in extract embedded_rom single_header batch_extract batch_extract_views batch_extract_skips \
             similar few_shot pca; do
      grep -qE "Test +#[0-9]+: example_$t\$" "$dir.tests"
    done
  fi
  pass "examples via $mode"
done

# OpenMP is optional for a consumer: without it featx is found all the same
# and runs on one thread.
step="examples via package without OpenMP"
dir=$work/examples-package-no-openmp
cmake -S "$src/examples" -B "$dir" -DFEATX_EXAMPLES_FEATX=package -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON -DFEATX_EXAMPLES_SINGLE_HEADER=OFF -DFEATX_SOURCE_DIR="$src" \
      -DFEATX_EXAMPLE_MODEL="$model" -DFEATX_EXAMPLE_IMAGE="$image" > "$dir.configure.log"
grep -q "featx: OpenMP not found: featx will run on one thread" "$dir.configure.log"
cmake --build "$dir" -j"$jobs" > "$dir.build.log"
absent grep -rq --include=flags.make --include=link.txt -e -fopenmp "$dir/CMakeFiles"
ctest --test-dir "$dir" --output-on-failure --no-tests=error
pass "examples via package without OpenMP"

step="extract.cpp with pkg-config"
export PKG_CONFIG_PATH=$prefix/share/pkgconfig
flags=$(pkg-config --cflags --libs featx)
echo "consumer_test: pkg-config --cflags --libs featx: $flags"
# shellcheck disable=SC2086  # the flags are words
g++ -std=c++17 -O2 "$src/examples/extract.cpp" $flags -o "$work/extract-pkg-config"
"$work/extract-pkg-config" "$model" "$image" | tee "$work/extract-pkg-config.out"
grep -q '^1280 features' "$work/extract-pkg-config.out"
pass "pkg-config"

# Both package files find the tree from their own place: it can be moved.
step="the installed tree moved"
mv "$prefix" "$work/moved"
PKG_CONFIG_PATH=$work/moved/share/pkgconfig pkg-config --cflags featx | grep -q -- "-I$work/moved/share/pkgconfig/../../include"
cmake -S "$src/examples" -B "$work/examples-moved" -DFEATX_EXAMPLES_FEATX=package -DCMAKE_PREFIX_PATH="$work/moved" \
      > "$work/examples-moved.configure.log"
grep -qx "featx_DIR:PATH=$work/moved/share/cmake/featx" "$work/examples-moved/CMakeCache.txt"
pass "moved"

[ $keep = 1 ] || rm -rf "$work"
echo "consumer_test: $passed passed, 0 failed"
