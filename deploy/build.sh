#!/usr/bin/env bash
# Configures and builds Atrium into ./build (Ninja, ccache, RelWithDebInfo by default).
# Usage: deploy/build.sh [extra cmake args...]; BUILD_DIR and BUILD_TYPE override defaults;
# BUILD_TARGET builds one target (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-2}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
