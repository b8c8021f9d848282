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

deploy/install-deps.sh

packages=(libpq-dev postgresql)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
