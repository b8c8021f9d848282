#!/usr/bin/env bash
# Installs what atrium-bench needs on Debian bookworm: the build dependencies
# (deploy/install-deps.sh), libpq (the PostgreSQL client, so the peer baseline is
# compiled in) and the PostgreSQL server binaries (initdb, pg_ctl), with which the
# bench starts its own throwaway cluster. Idempotent and non-interactive; run as root
# (or with sudo available).
#
# Note: Debian's postgresql package may create and start a default cluster on port 5432;
# the bench never uses it.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh libpq-dev postgresql
