#!/usr/bin/env bash
# The NEON kernels on aarch64 under qemu-user: tests/cross_test.sh aarch64
# (kept for its old name and options; docs/targets.md has every target).
#
# Usage: tests/aarch64_test.sh [--full]
# Env: AARCH64_CXX, QEMU_AARCH64, AARCH64_SYSROOT as before, and
#      everything tests/cross_test.sh reads.
set -euo pipefail
export CROSS_CXX=${AARCH64_CXX:-${CROSS_CXX:-aarch64-linux-gnu-g++}}
export CROSS_QEMU=${QEMU_AARCH64:-${CROSS_QEMU:-qemu-aarch64}}
export CROSS_SYSROOT=${AARCH64_SYSROOT:-${CROSS_SYSROOT:-/usr/aarch64-linux-gnu}}
exec bash "$(dirname "$0")/cross_test.sh" aarch64 "$@"
