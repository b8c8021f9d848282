#!/usr/bin/env bash
# Installs dependencies, builds, and starts atriumd on its embedded default:
# HTTP on 127.0.0.1:8080, data in ./data. Extra arguments go to atriumd; so do
# ATRIUM_DATA_DIR, ATRIUM_LISTEN and every other ATRIUM_<OPTION> (README, "Running").
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh
exec ./build/atriumd "$@"
