#!/usr/bin/env bash
# featx on a fresh Debian machine, from a clone with the shared data folder
# beside it (../shared): installs what is missing, builds Release, exports
# the TF2 MobileNetV2 and turns a photo into its feature vector. Run it again
# any time: what is already there is kept (cmake and make rebuild only what
# changed), and the main job runs again.
#
#   bash scripts/setup.sh [--no-tests]      --no-tests: build the library and CLI only
# Env: FEATX_SHARED_DIR (../shared), FEATX_BUILD_DIR (build), FEATX_JOBS (all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build_tests=ON
for arg in "$@"; do
  case $arg in
    --no-tests) build_tests=OFF ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
shared=${FEATX_SHARED_DIR:-$(cd .. && pwd)/shared}
build=${FEATX_BUILD_DIR:-build}
jobs=${FEATX_JOBS:-$(nproc)}
python=/usr/bin/python3   # Debian's, with the python3-* packages; not a user's pyenv
tflite=$shared/models/tf2_mobilenet_v2_1.0_224_ptq.tflite
image=$shared/images/cat.bmp

step=""
begin() { step=$1; echo; echo "== setup: $1"; }
trap 'echo "setup: FAILED while: $step" >&2' ERR

for f in "$tflite" "$image"; do
  [ -f "$f" ] || { echo "setup: $f not found: put the shared data folder beside the repo, or set FEATX_SHARED_DIR" >&2; exit 1; }
done

begin "Debian packages (scripts/debian-packages.txt)"
bash scripts/install_packages.sh

begin "ONNX Runtime's npm package (tools/ort; the tests' independent reference)"
if (cd tools/ort && npm ls --silent onnxruntime-node > /dev/null 2>&1); then
  echo "setup: tools/ort/node_modules already has onnxruntime-node $(node -p "require('./tools/ort/node_modules/onnxruntime-node/package.json').version")"
else
  # --ignore-scripts: the postinstall step only fetches GPU extras; the CPU library is in the package.
  (cd tools/ort && npm install --ignore-scripts --no-audit --no-fund --silent)
  echo "setup: installed onnxruntime-node into tools/ort/node_modules"
fi

begin "configure and build Release in $build/ (tests: $build_tests, $jobs jobs)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFEATX_SHARED_DIR="$shared" -DFEATX_BUILD_TESTS=$build_tests
cmake --build "$build" -j"$jobs"

begin "export the TF2 MobileNetV2 to $build/mobilenet_v2.featx"
"$python" tools/export_weights.py --tflite "$tflite" -o "$build/mobilenet_v2.featx"

begin "the main job: featx extract on $image"
"$build/featx" extract -m "$build/mobilenet_v2.featx" -o "$build/cat.npy" "$image"
shape=$("$python" -c "import numpy, sys; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape)" "$build/cat.npy")

echo
echo "setup: done. The feature vector of $(basename "$image") ($shape) is in $build/cat.npy,"
echo "       the input names in $build/cat.npy.names.txt."
[ $build_tests = ON ] && echo "       The tests: ctest --test-dir $build --output-on-failure"
exit 0
