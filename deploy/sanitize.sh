#!/usr/bin/env bash
# Builds Atrium again with AddressSanitizer and UndefinedBehaviorSanitizer (any report
# aborts the process, so a test or the atriumd it starts fails) into ./build-asan, and
# runs the in-process suites, the fuzz seed corpora and the hostile suite against the
# sanitized atriumd. The e2e, WebSocket, browser and Kafka flows run in deploy/test.sh;
# under the sanitizers they only cost time. Only the targets those suites need are
# built (atrium_sanitized_suites in CMakeLists.txt).
# Run before each stop that changed C++ (docs/contributing.md); ~15 min on 2 cores
# with a warm ccache. Extra arguments go to ctest (for example -R '^hostile').
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan BUILD_TYPE=Debug BUILD_TARGET=atrium_sanitized_suites deploy/build.sh -DATRIUM_SANITIZE=ON
ctest --test-dir build-asan --output-on-failure -j "${JOBS:-2}" -R '^(unit|actors|rocksdb|adapters|http|fuzz|hostile)' "$@"
