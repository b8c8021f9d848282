#!/usr/bin/env bash
# Installs everything Atrium needs to build, test and run on Debian bookworm, plus any
# extra Debian packages named as arguments. The adapter tests and the benchmark start
# their own throwaway PostgreSQL from the `postgresql` package's binaries (initdb,
# pg_ctl); Debian's package may also create and start a default cluster on port 5432,
# which nothing here uses.
# The docker runtime's tests (tests/adapters/docker) start their own dockerd as root from
# Debian's `docker.io` (its socket, data and exec roots in a temp dir; nothing listens on
# /var/run/docker.sock for them) and build their image from `busybox-static`: about 22 s
# of apt on this machine for the two (26 packages, 64 MB downloaded). `apparmor` is only
# a recommendation of docker.io, which --no-install-recommends drops, but where the kernel
# enables AppArmor dockerd needs its apparmor_parser to start any container.
# The TLS tests (tests/ws/tls.test.mjs) make their throwaway CA and certificates with the
# `openssl` command and connect with `curl --cacert`.
# /metrics is written by prometheus-cpp's text serializer (prometheus-cpp-dev, core only);
# `prometheus` brings promtool, which tests/e2e/metrics_e2e_test.cpp runs on a real
# atriumd's /metrics and on deploy/prometheus/alerts.yml (no Prometheus server starts:
# --no-install-recommends, and Debian's policy-rc.d in containers).
# Idempotent and non-interactive; run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git curl ca-certificates
  libcaf-dev librocksdb-dev librdkafka-dev kcat
  libboost1.81-dev libboost-url1.81-dev
  nlohmann-json3-dev libsimdjson-dev libspdlog-dev libfmt-dev libcli11-dev catch2 libsodium-dev libssl-dev libjemalloc-dev
  libpqxx-dev libsqlite3-dev postgresql bubblewrap libcsv-dev
  libhowardhinnant-date-dev tzdata
  clang-format python3 zlib1g-dev openssl
  prometheus-cpp-dev prometheus
  wrk
  chromium
  docker.io busybox-static apparmor
  "$@"
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# The WebSocket/SSE end-to-end tests (tests/ws) run on Node.js with the npm package `ws`:
# Debian's nodejs and npm unless a node is already installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

# Installs the locked npm dependencies (package-lock.json) of tests/api (the API
# contract checks: @redocly/cli, ajv, @asyncapi/parser), tests/ws (the WebSocket
# tests), web/ (the console, built by esbuild) and tests/browser (the browser tests:
# playwright-core driving Debian's chromium, axe-core) once node and npm exist; a
# folder whose node_modules is newer than its lock file is skipped.
install_node_tests() {
  local root dir marker
  root="$(cd "$(dirname "$0")/.." && pwd)"
  for entry in tests/ws:ws web:esbuild tests/browser:playwright-core tests/api:ajv; do
    dir="$root/${entry%%:*}"
    marker="$dir/node_modules/${entry#*:}/package.json"
    if [ -f "$marker" ] && ! [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      echo "install-deps: ${entry%%:*} node modules already installed"
      continue
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  done
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  install_node_tests
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
install_node_tests
