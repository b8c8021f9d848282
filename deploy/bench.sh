#!/usr/bin/env bash
# Installs the bench's dependencies, builds Release into ./build-release and runs
# atrium-bench; every argument goes to atrium-bench (see `deploy/bench.sh --help`).
# stdout: one JSON line per measured point; stderr: build output, progress, summary.
# Temp dirs go under $TMPDIR (default /tmp): keep it on the disk you mean to measure.
#   deploy/bench.sh > bench.jsonl
#   deploy/bench.sh --paths raw,store --writers 256 --seconds 10
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-release}
JOBS=${JOBS:-2}
deploy/install-bench-deps.sh >&2
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$BUILD_DIR" -j "$JOBS" --target atrium-bench >&2
exec "$BUILD_DIR/tests/bench/atrium-bench" "$@"
