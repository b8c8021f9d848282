#!/usr/bin/env bash
# Installs what atrium-bench needs on Debian bookworm. Since the connection tester and
# its tests need them too, deploy/install-deps.sh already installs all of it: libpq (via
# libpqxx-dev, so the PostgreSQL baseline is compiled in) and the PostgreSQL server
# binaries with which the bench starts its own throwaway cluster. Kept so that
# deploy/bench.sh and existing instructions keep working. Idempotent and
# non-interactive; run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

exec deploy/install-deps.sh "$@"
