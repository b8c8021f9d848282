#!/usr/bin/env bash
# The packaging test of issue 20 (docs/operations.md, "The packaging test"): slow, needs
# root and the network to deb.debian.org (and registry.npmjs.org for the image's web
# console); not part of CTest or CI.
#
#   deploy/test-packaging.sh [STAGE...]     stages, in order (default: all of them):
#     deps     apt-get installs the packages below that are missing
#     deb      builds atriumd, atrium-shim and the console in $BUILD_DIR, `cpack -G DEB`,
#              checks the package's files, conffiles and dependencies, and starts the
#              built atriumd with each shipped config file
#     bases    debootstraps bookworm from Debian's mirror (cached as tarballs) and
#              `docker import`s debian:bookworm and debian:bookworm-slim
#     machine  boots a fresh debootstrapped bookworm with `systemd-nspawn -b`, installs
#              the .deb with apt-get, checks the unit (systemd-analyze verify), the user,
#              /var/lib/atrium, /readyz and the restart after a crash
#     image    `docker build`s deploy/docker/Dockerfile and runs the image: healthy,
#              /readyz 200, a project survives a container restart on the volume
#     compose  `docker-compose config` and yamllint of deploy/compose.yaml
#     k8s      yamllint and deploy/k8s/check-manifests.py (python3-kubernetes' models),
#              and atriumd started with the ConfigMap's config file
#
# It prints one line per check (ok/FAIL/skip) and a summary; exit 0 when nothing failed.
# Idempotent: the debootstrap tarballs and the docker daemon's data (base images, the
# built image and its layers) are kept in $CACHE (default /var/tmp/atrium-pkgtest) for
# the next run; `rm -rf` it to start over. What it starts (dockerd, containers, volumes,
# the nspawn machine, temp dirs) it stops and removes by id or PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
CACHE=${ATRIUM_PKGTEST_CACHE:-/var/tmp/atrium-pkgtest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
JOBS=${JOBS:-2}
VERSION=$(sed -n 's/^project(atrium VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
DEB=atrium_${VERSION}_amd64.deb
IMAGE=atrium:${VERSION}-pkgtest
PASSWORD=pkgtest-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
DOCKER=/usr/bin/docker # Debian's docker.io client, talking to the dockerd started below

# The Debian packages this test needs (not CI's: deploy/install-deps.sh does not list them).
packages=(debootstrap systemd-container docker.io yamllint docker-compose python3-kubernetes
  python3-yaml curl dpkg-dev cmake ninja-build)

all_stages=(deps deb bases machine image compose k8s)
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=("${all_stages[@]}")
for s in "${stages[@]}"; do
  [[ " ${all_stages[*]} " == *" $s "* ]] || { echo "unknown stage '$s' (${all_stages[*]})" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "test-packaging: run as root (debootstrap, nspawn, dockerd)" >&2; exit 2; }

mkdir -p "$CACHE"
LOG=$CACHE/last-run.log
: >"$LOG"
passed=0 failed=0 skipped=0
ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
skip() { echo "skip - $*"; skipped=$((skipped + 1)); }
# check DESCRIPTION COMMAND...: ok when the command succeeds (its output goes to $LOG).
check() {
  local what=$1
  shift
  echo "+ $*" >>"$LOG"
  if "$@" >>"$LOG" 2>&1; then ok "$what"; else bad "$what"; fi
}
# expect DESCRIPTION WANT GOT
expect() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: want '$2', got '$3'"; fi; }
stage() { echo; echo "== $*"; }
# until_ok SECONDS COMMAND...: retries the command every second.
until_ok() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- what this run started, stopped on exit ---------------------------------------------
pids=()  # processes to SIGTERM (then SIGKILL)
dirs=()  # temp dirs to remove
containers=() volumes=()
DOCKERD_PID="" NSPAWN_PID="" NSPAWN_LEADER=""
cleanup() {
  set +e
  for c in "${containers[@]}"; do dk rm -f "$c" >/dev/null 2>&1; done
  for v in "${volumes[@]}"; do dk volume rm -f "$v" >/dev/null 2>&1; done
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    [ -n "$NSPAWN_LEADER" ] && kill -RTMIN+4 "$NSPAWN_LEADER" 2>/dev/null # systemd: poweroff
    for _ in $(seq 30); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$p" 2>/dev/null
  done
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
  fi
  for d in "${dirs[@]}"; do
    # an nspawn root may still hold mounts of a dead machine
    grep -q " $d/" /proc/mounts 2>/dev/null && awk -v d="$d/" 'index($2, d) == 1 {print $2}' /proc/mounts |
      sort -r | xargs -r -n1 umount -l
    rm -rf "$d"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- deps -----------------------------------------------------------------------------
stage_deps() {
  stage "deps: Debian packages"
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends \
      "${missing[@]}" >>"$LOG" 2>&1 || { apt-get update -q >>"$LOG" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends \
        "${missing[@]}" >>"$LOG" 2>&1; }
  fi
  check "${#packages[@]} packages installed: ${packages[*]}" dpkg-query -W "${packages[@]}"
}

# --- deb ------------------------------------------------------------------------------
# start_atriumd DATA_DIR ARGS...: starts the built atriumd on 127.0.0.1:0 and waits for
# DATA_DIR/atriumd.addr; echoes "PID ADDR".
start_atriumd() {
  local data=$1
  shift
  ATRIUM_ADMIN_PASSWORD=$PASSWORD "$ROOT/$BUILD_DIR/atriumd" serve "$@" --data-dir "$data" --listen 127.0.0.1:0 \
    >>"$LOG" 2>&1 &
  local pid=$!
  pids+=("$pid")
  until_ok 60 test -s "$data/atriumd.addr" || true
  echo "$pid $(cat "$data/atriumd.addr" 2>/dev/null)"
}

# config_starts WHAT FILE [ARGS...]: atriumd takes every line of FILE (--config) and answers /readyz.
config_starts() {
  local what=$1 file=$2
  shift 2
  local data pid addr
  data=$(mktemp -d /tmp/atrium-pkgtest-cfg.XXXXXX)
  dirs+=("$data")
  read -r pid addr < <(start_atriumd "$data" --config "$file" "$@")
  if [ -n "$addr" ] && until_ok 60 curl -fsS "http://$addr/readyz"; then
    ok "$what: atriumd serve --config $file starts and /readyz answers 200"
  else
    bad "$what: atriumd serve --config $file did not start (see $LOG)"
  fi
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

stage_deb() {
  stage "deb: cpack -G DEB in $BUILD_DIR"
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work} CCACHE_NOHASHDIR=true
  [ -f "$BUILD_DIR/build.ninja" ] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$LOG"
  check "atriumd, atrium-shim and the web console build" \
    cmake --build "$BUILD_DIR" -j "$JOBS" --target atriumd atrium-shim atrium_web
  rm -f "$BUILD_DIR"/atrium_*.deb
  check "cpack -G DEB" bash -c "cd '$BUILD_DIR' && cpack -G DEB"
  local pkg=$BUILD_DIR/$DEB
  if [ ! -f "$pkg" ]; then
    bad "$DEB was made"
    return
  fi
  ok "$DEB made ($(du -h "$pkg" | cut -f1))"
  local files
  files=$(dpkg-deb -c "$pkg" | awk '{print $6}')
  for f in ./usr/bin/atriumd ./usr/bin/atrium-shim ./usr/share/atrium/web/index.html \
    ./lib/systemd/system/atriumd.service ./etc/atrium/atriumd.toml ./etc/atrium/atriumd.env; do
    if grep -qx "$f" <<<"$files"; then ok "the package holds ${f#.}"; else bad "the package holds ${f#.}"; fi
  done
  expect "conffiles" "/etc/atrium/atriumd.toml /etc/atrium/atriumd.env" \
    "$(dpkg-deb -I "$pkg" conffiles | xargs)"
  local depends
  depends=$(dpkg-deb -f "$pkg" Depends)
  echo "     Depends: $depends"
  for lib in librocksdb libcaf-core libsodium libssl3 libpqxx libboost-url libprometheus-cpp-core adduser tzdata; do
    if grep -q "$lib" <<<"$depends"; then ok "Depends names $lib"; else bad "Depends names $lib"; fi
  done
  for s in postinst prerm postrm; do
    if dpkg-deb -I "$pkg" "$s" >/dev/null 2>&1; then ok "maintainer script $s"; else bad "maintainer script $s"; fi
  done
  config_starts "the package's config" deploy/debian/atriumd.toml
  config_starts "the image's config" deploy/docker/atriumd.toml
}

# --- bases: debootstrap + docker import -------------------------------------------------
# rootfs_tar NAME DEBOOTSTRAP_ARGS...: $CACHE/NAME.tar, made by debootstrap once.
rootfs_tar() {
  local name=$1
  shift
  local tar=$CACHE/$name.tar
  if [ -s "$tar" ]; then
    ok "debootstrap $name: cached $(du -h "$tar" | cut -f1) tarball"
    return
  fi
  local dir
  dir=$(mktemp -d "$CACHE/rootfs-$name.XXXXXX")
  dirs+=("$dir")
  local t0=$SECONDS
  if debootstrap "$@" bookworm "$dir" "$MIRROR" >>"$LOG" 2>&1 && tar -C "$dir" -cf "$tar.part" . && mv "$tar.part" "$tar"; then
    ok "debootstrap $* bookworm from $MIRROR ($((SECONDS - t0)) s, $(du -h "$tar" | cut -f1))"
  else
    rm -f "$tar.part"
    bad "debootstrap $* bookworm (see $LOG)"
  fi
  rm -rf "$dir"
}

# Starts a dockerd of this test's own (socket, data and exec roots in $CACHE; the host's
# network only: no bridge, no iptables), unless it runs already.
DOCKER_HOST_ARG=""
dk() { "$DOCKER" -H "$DOCKER_HOST_ARG" "$@"; }
start_dockerd() {
  [ -n "$DOCKERD_PID" ] && return 0
  DOCKER_HOST_ARG=unix://$CACHE/docker.sock
  local driver
  for driver in overlay2 vfs; do
    rm -f "$CACHE/docker.sock"
    /usr/sbin/dockerd --host "$DOCKER_HOST_ARG" --data-root "$CACHE/docker" --exec-root "$CACHE/x" \
      --pidfile "$CACHE/docker.pid" --bridge=none --iptables=false --ip6tables=false \
      --storage-driver "$driver" >"$CACHE/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    if until_ok 60 dk info; then
      ok "dockerd started (pid $DOCKERD_PID, storage $driver, $("$DOCKER" --version))"
      return 0
    fi
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=""
  done
  bad "dockerd does not start (see $CACHE/dockerd.log)"
  return 1
}

# import_base TAG TARBALL [slim]: `docker import` a rootfs as TAG unless TAG exists.
import_base() {
  local tag=$1 tar=$2 slim=${3:-}
  if dk image inspect "$tag" >/dev/null 2>&1; then
    ok "$tag exists ($(dk image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
    return
  fi
  local src=$tar
  if [ -n "$slim" ]; then
    # As the official -slim images: no documentation, man pages, locales (but C) and apt lists,
    # and dpkg keeps it so (/etc/dpkg/dpkg.cfg.d/docker).
    local dir
    dir=$(mktemp -d "$CACHE/rootfs-slim.XXXXXX")
    dirs+=("$dir")
    tar -C "$dir" -xf "$tar"
    cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/groff/* "$dir"/usr/share/info/* "$dir"/usr/share/lintian/* \
      "$dir"/usr/share/linda/* "$dir"/usr/share/locale/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin \
      "$dir"/var/cache/apt/archives/*.deb
    src=$CACHE/slim.tar
    tar -C "$dir" -cf "$src" .
    rm -rf "$dir"
  fi
  if dk import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$src" "$tag" >>"$LOG" 2>&1; then
    ok "docker import $tag ($(dk image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
  else
    bad "docker import $tag"
  fi
  if [ -n "$slim" ]; then rm -f "$src"; fi
}

stage_bases() {
  stage "bases: debootstrap and docker import"
  rootfs_tar machine            # the default variant: a fresh machine, with systemd
  rootfs_tar minbase --variant=minbase # what Debian's docker images are made of
  start_dockerd || return
  import_base debian:bookworm "$CACHE/minbase.tar"
  import_base debian:bookworm-slim "$CACHE/minbase.tar" slim
}

# --- machine: the .deb on a fresh bookworm under systemd-nspawn --------------------------
# in_machine COMMAND...: runs a command inside the booted machine (its namespaces).
in_machine() { nsenter --target "$NSPAWN_LEADER" --mount --uts --ipc --net --pid -- "$@"; }

stage_machine() {
  stage "machine: $DEB on a fresh bookworm (systemd-nspawn -b)"
  local pkg=$BUILD_DIR/$DEB
  [ -f "$pkg" ] || { bad "no $pkg (run the deb stage)"; return; }
  [ -s "$CACHE/machine.tar" ] || { bad "no $CACHE/machine.tar (run the bases stage)"; return; }
  local root
  root=$(mktemp -d /var/tmp/atrium-pkgtest-machine.XXXXXX)
  dirs+=("$root")
  tar -C "$root" -xf "$CACHE/machine.tar"
  cp "$pkg" "$root/root/"
  local name
  name=atrium-pkgtest-$$
  # The host's network (apt-get reaches the mirror; curl reaches atriumd on 127.0.0.1);
  # no registration with a host systemd-machined (there may be none).
  systemd-nspawn --quiet --boot --directory "$root" --machine "$name" --register=no --keep-unit \
    --resolv-conf=copy-host --console=read-only >"$CACHE/nspawn.log" 2>&1 &
  NSPAWN_PID=$!
  local deadline=$((SECONDS + 60))
  while [ -z "$NSPAWN_LEADER" ] && [ $SECONDS -lt $deadline ]; do
    NSPAWN_LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1 || true)
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 1
  done
  if [ -z "$NSPAWN_LEADER" ]; then
    bad "systemd-nspawn -b boots the machine (see $CACHE/nspawn.log)"
    tail -5 "$CACHE/nspawn.log" | sed 's/^/     /'
    return
  fi
  local state
  state=$(timeout 120 nsenter --target "$NSPAWN_LEADER" --mount --uts --ipc --net --pid -- \
    systemctl is-system-running --wait 2>/dev/null || true)
  ok "systemd-nspawn -b booted $name (nspawn pid $NSPAWN_PID, init pid $NSPAWN_LEADER, system $state)"

  local apt_out
  if apt_out=$(in_machine bash -c \
    "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && cd /root && apt-get install -y -q ./$DEB" 2>&1); then
    ok "apt-get install ./$DEB: $(grep -o '[0-9]* newly installed' <<<"$apt_out") (its dependencies from $MIRROR)"
  else
    bad "apt-get install ./$DEB"
  fi
  echo "$apt_out" >>"$LOG"
  check "systemd-analyze verify atriumd.service" in_machine bash -c \
    'out=$(systemd-analyze verify /lib/systemd/system/atriumd.service 2>&1); echo "$out"; [ -z "$out" ]'
  expect "user atrium: system user without a login shell" "yes /usr/sbin/nologin" \
    "$(in_machine bash -c 'u=$(getent passwd atrium); uid=$(cut -d: -f3 <<<"$u"); [ -n "$u" ] && [ "$uid" -lt 1000 ] && echo -n "yes "; cut -d: -f7 <<<"$u"')"
  expect "/var/lib/atrium owner and mode" "atrium:atrium 750" "$(in_machine stat -c '%U:%G %a' /var/lib/atrium)"
  expect "dpkg conffiles" "2" "$(in_machine dpkg-query -W -f='${Conffiles}\n' atrium | grep -c /etc/atrium/)"

  local port
  port=$(free_port)
  # The operator's step: the admin password (and here a free port: the machine shares
  # the host's network) into the environment file.
  in_machine bash -c "printf 'ATRIUM_ADMIN_PASSWORD=%s\nATRIUM_LISTEN=127.0.0.1:%s\n' '$PASSWORD' '$port' >>/etc/atrium/atriumd.env"
  check "systemctl start atriumd" in_machine systemctl start atriumd
  local base=http://127.0.0.1:$port
  if until_ok 90 curl -fsS "$base/readyz"; then ok "/readyz answers 200 on $base"; else bad "/readyz answers 200 on $base"; fi
  local main
  main=$(in_machine systemctl show -P MainPID atriumd)
  expect "atriumd runs as" "atrium" "$(in_machine stat -c %U "/proc/$main")"
  expect "its data" "atrium 600" "$(in_machine stat -c '%U %a' /var/lib/atrium/master.key 2>&1)"
  if in_machine test -d /var/lib/atrium/rocksdb; then ok "the store is /var/lib/atrium/rocksdb"; else bad "the store is /var/lib/atrium/rocksdb"; fi
  expect "the console from /usr/share/atrium/web: GET /" "200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$base/")"
  local token project
  token=$(curl -fsS -X POST -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$base/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' || true)
  project=$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"pkgtest","description":"made by deploy/test-packaging.sh"}' "$base/v1/projects" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' || true)
  if [ -n "$project" ]; then ok "admin (password from atriumd.env) created project $project"; else bad "admin logs in and creates a project"; fi

  check "systemctl kill --signal=SIGKILL atriumd" in_machine systemctl kill --signal=SIGKILL atriumd
  local restarted=""
  deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    local now
    now=$(in_machine systemctl show -P MainPID atriumd)
    if [ "$now" != 0 ] && [ "$now" != "$main" ] && curl -fsS "$base/readyz" >/dev/null 2>&1; then
      restarted=$now
      break
    fi
    sleep 1
  done
  if [ -n "$restarted" ]; then
    ok "Restart=on-failure: restarted (pid $main -> $restarted, NRestarts=$(in_machine systemctl show -P NRestarts atriumd)), /readyz 200"
  else
    bad "Restart=on-failure: atriumd back after SIGKILL"
  fi
  expect "the project after the restart" "200" \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/v1/projects/$project")"
  check "systemctl stop atriumd" in_machine systemctl stop atriumd
  expect "stopped cleanly" "inactive success" \
    "$(in_machine systemctl show -P ActiveState atriumd) $(in_machine systemctl show -P Result atriumd)"
  echo "     $(in_machine systemd-analyze security atriumd.service 2>/dev/null | tail -1)"
}

# --- image ------------------------------------------------------------------------------
stage_image() {
  stage "image: docker build deploy/docker/Dockerfile and run it"
  start_dockerd || return
  for b in debian:bookworm debian:bookworm-slim; do
    dk image inspect "$b" >/dev/null 2>&1 || { bad "no $b image (run the bases stage)"; return; }
  done
  # The host's locally added CAs (a TLS-intercepting proxy's) for the build stage's npm ci.
  local ca cas=()
  for ca in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$ca" ] || continue
    cp -p "$ca" deploy/docker/ca-certificates/
    cas+=("$ROOT/deploy/docker/ca-certificates/$(basename "$ca")")
  done
  dirs+=("${cas[@]}")
  [ ${#cas[@]} -eq 0 ] || echo "     the build trusts the host's local CAs: ${cas[*]##*/}"
  local t0=$SECONDS
  echo "     building $IMAGE (from source, -j $JOBS; log: $CACHE/docker-build.log)"
  # The build stage is tagged too ($IMAGE-build): it is the build cache of the next run,
  # which `docker image prune` would otherwise take for a dangling image.
  if nice -n 10 "$DOCKER" -H "$DOCKER_HOST_ARG" build --network host --force-rm --build-arg JOBS="$JOBS" \
    -f deploy/docker/Dockerfile --target build -t "$IMAGE-build" . >"$CACHE/docker-build.log" 2>&1 &&
    nice -n 10 "$DOCKER" -H "$DOCKER_HOST_ARG" build --network host --force-rm --build-arg JOBS="$JOBS" \
      -f deploy/docker/Dockerfile -t "$IMAGE" . >>"$CACHE/docker-build.log" 2>&1; then
    ok "docker build $IMAGE ($((SECONDS - t0)) s, $(dk image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
  else
    bad "docker build (see $CACHE/docker-build.log)"
    tail -20 "$CACHE/docker-build.log" | sed 's/^/     /'
    return
  fi
  # Nothing dangling is kept (an earlier build's layers); the build stage is, tagged.
  dk image prune -f >>"$LOG" 2>&1 || true
  echo "     docker images: $(dk images --format '{{.Repository}}:{{.Tag}} ({{.Size}})' | paste -sd, - | sed 's/,/, /g')"
  expect "image user" "10001:10001" "$(dk image inspect -f '{{.Config.User}}' "$IMAGE")"
  expect "image exposes" "map[8080/tcp:{}]" "$(dk image inspect -f '{{.Config.ExposedPorts}}' "$IMAGE")"
  expect "image volume" "map[/data:{}]" "$(dk image inspect -f '{{.Config.Volumes}}' "$IMAGE")"
  expect "image healthcheck" "[CMD-SHELL curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1]" \
    "$(dk image inspect -f '{{.Config.Healthcheck.Test}}' "$IMAGE")"

  local name=atrium-pkgtest-$$ vol=atrium-pkgtest-data-$$
  dk volume create "$vol" >>"$LOG"
  volumes+=("$vol")
  # No network but the container's own loopback: the checks run inside it (docker exec).
  # Read-only root, /tmp a tmpfs, no capabilities: what deploy/k8s/statefulset.yaml asks.
  if dk run -d --name "$name" --network none --read-only --tmpfs /tmp --cap-drop ALL \
    --security-opt no-new-privileges -e ATRIUM_ADMIN_PASSWORD="$PASSWORD" -v "$vol:/data" "$IMAGE" >>"$LOG" 2>&1; then
    containers+=("$name")
    ok "docker run $IMAGE (volume $vol on /data; read-only root, no capabilities)"
  else
    bad "docker run $IMAGE"
    return
  fi
  healthy() { [ "$(dk inspect -f '{{.State.Health.Status}}' "$name")" = healthy ]; }
  if until_ok 120 healthy; then ok "HEALTHCHECK: healthy"; else bad "HEALTHCHECK: healthy ($(dk inspect -f '{{.State.Health.Status}}' "$name"))"; fi
  in_c() { dk exec "$name" "$@"; }
  expect "atriumd listens on" "0.0.0.0:8080" "$(in_c cat /data/atriumd.addr 2>&1)"
  expect "/readyz" "200" "$(in_c curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/readyz)"
  expect "atriumd runs as" "atrium" \
    "$(in_c sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = atriumd ] && stat -c %U $p; done; true')"
  local token project
  token=$(in_c curl -fsS -X POST -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" http://127.0.0.1:8080/v1/auth/login |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' || true)
  project=$(in_c curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"survivor","description":"made by deploy/test-packaging.sh"}' http://127.0.0.1:8080/v1/projects |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' || true)
  if [ -n "$project" ]; then ok "created project $project over the API"; else bad "created a project over the API"; fi
  check "docker restart" dk restart -t 30 "$name"
  if until_ok 120 healthy; then ok "healthy again after the restart"; else bad "healthy again after the restart"; fi
  expect "the project after the restart" "survivor" \
    "$(in_c curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:8080/v1/projects/$project" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>&1)"
  expect "restarts of the container" "0 exited" \
    "$(dk stop -t 30 "$name" >/dev/null; dk inspect -f '{{.RestartCount}} {{.State.Status}}' "$name")"
  expect "atriumd's exit code on docker stop (SIGTERM through tini)" "0" "$(dk inspect -f '{{.State.ExitCode}}' "$name")"
}

# --- compose, k8s -----------------------------------------------------------------------
stage_compose() {
  stage "compose: deploy/compose.yaml"
  check "docker-compose config -q ($(docker-compose version --short))" docker-compose -f deploy/compose.yaml config -q
  expect "services" "atriumd kafka postgres" "$(docker-compose -f deploy/compose.yaml config --services | sort | xargs)"
  check "yamllint -s deploy/compose.yaml" yamllint -s -c deploy/.yamllint deploy/compose.yaml
  skip "docker-compose up: apache/kafka and postgres cannot be pulled here (no image registry)"
}

stage_k8s() {
  stage "k8s: deploy/k8s"
  check "yamllint -s deploy/k8s" yamllint -s -c deploy/.yamllint deploy/k8s
  local out rc=0 cfg
  cfg=$(mktemp /tmp/atrium-pkgtest-cm.XXXXXX)
  dirs+=("$cfg")
  out=$(/usr/bin/python3 deploy/k8s/check-manifests.py --dump-config "$cfg" 2>&1) || rc=$?
  echo "$out" | sed 's/^/     /'
  if [ $rc -eq 0 ]; then ok "check-manifests.py: the objects against python3-kubernetes' models, and together"; else bad "check-manifests.py"; fi
  if [ -x "$BUILD_DIR/atriumd" ]; then
    local key
    key=$(mktemp /tmp/atrium-pkgtest-key.XXXXXX)
    dirs+=("$key")
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$key"
    sed -i "s|^master-key-file = .*|master-key-file = \"$key\"|" "$cfg"
    config_starts "the ConfigMap's config (master key path replaced)" "$cfg"
  else
    skip "the ConfigMap's config: no $BUILD_DIR/atriumd (run the deb stage)"
  fi
  skip "kubectl apply: no cluster here"
}

echo "test-packaging: atrium $VERSION, stages: ${stages[*]} (log: $LOG)"
for s in "${stages[@]}"; do "stage_$s"; done
echo
echo "test-packaging: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
