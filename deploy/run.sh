#!/usr/bin/env bash
# Installs dependencies, builds, and starts atriumd on its embedded default:
# HTTP on 127.0.0.1:8080, data in ./data. Extra arguments go to atriumd.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh
exec ./build/atriumd --data-dir "${ATRIUM_DATA_DIR:-data}" --listen "${ATRIUM_LISTEN:-127.0.0.1:8080}" "$@"
