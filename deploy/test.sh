#!/usr/bin/env bash
# Builds Atrium and runs the whole test suite (unit, RocksDB, end-to-end) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-2}"
