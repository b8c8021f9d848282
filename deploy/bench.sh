#!/usr/bin/env bash
# Installs the bench's dependencies, builds Release into ./build-release and runs
# atrium-bench; every argument goes to atrium-bench (see `deploy/bench.sh --help`).
# stdout: one JSON line per measured point; stderr: build output, progress, summary.
# Temp dirs go under $TMPDIR (default /tmp): keep it on the disk you mean to measure.
#   deploy/bench.sh > bench.jsonl
#   deploy/bench.sh --paths raw,store --writers 256 --seconds 10
#   deploy/bench.sh --paths console      (the web console in chromium: builds atriumd and the
#                                         console into ./build and runs
#                                         tests/bench/browser/console_bench.mjs; see
#                                         docs/performance.md "Console")
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-release}
JOBS=${JOBS:-2}
# `console` in --paths runs the browser-driven console bench (node + chromium, not
# atrium-bench); the other paths, if any, go to atrium-bench first.
args=() console=0 i=0 all=("$@")
while [ $i -lt ${#all[@]} ]; do
  a=${all[$i]}
  if [ "$a" = --paths ] && [ $((i + 1)) -lt ${#all[@]} ]; then
    rest=$(tr ',' '\n' <<<"${all[$((i + 1))]}" | grep -vx console | paste -sd, - || true)
    [ "$rest" != "${all[$((i + 1))]}" ] && console=1
    [ -n "$rest" ] && args+=(--paths "$rest")
    i=$((i + 2))
    continue
  fi
  args+=("$a")
  i=$((i + 1))
done
if [ $console = 1 ]; then
  CONSOLE_BUILD_DIR=${CONSOLE_BUILD_DIR:-build}
  for d in web tests/browser tests/ws; do [ -d $d/node_modules ] || (cd $d && npm ci --no-audit --no-fund >&2); done
  cmake -S . -B "$CONSOLE_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$CONSOLE_BUILD_DIR" -j "$JOBS" --target atriumd atrium_web >&2
  if [ ${#args[@]} -gt 0 ] && printf '%s\n' "${args[@]}" | grep -qx -- --paths; then
    "$0" "${args[@]}"
  fi
  ATRIUMD="$PWD/$CONSOLE_BUILD_DIR/atriumd" ATRIUM_WEB_ROOT="$PWD/$CONSOLE_BUILD_DIR/web" exec node tests/bench/browser/console_bench.mjs
fi
set -- "${args[@]}"
deploy/install-bench-deps.sh >&2
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$BUILD_DIR" -j "$JOBS" --target atrium-bench >&2
exec "$BUILD_DIR/tests/bench/atrium-bench" "$@"
