#!/usr/bin/env bash
# Fails when the committed generated code is not what flatc makes of featx.fbs.
set -euo pipefail
flatc=$1 src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$flatc" --cpp --scoped-enums -o "$tmp" "$src/include/featx/schema/featx.fbs"
diff -u "$src/include/featx/schema/featx_generated.h" "$tmp/featx_generated.h" \
  || { echo "stale: include/featx/schema/featx_generated.h; regenerate with flatc --cpp --scoped-enums"; exit 1; }
"$flatc" --python -o "$tmp/py" "$src/include/featx/schema/featx.fbs"
diff -ru "$src/tools/featx_export/_generated/featx" "$tmp/py/featx" -x __pycache__ \
  || { echo "stale: tools/featx_export/_generated; regenerate with flatc --python"; exit 1; }
echo "schema headers fresh"
