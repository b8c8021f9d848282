#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (tests/fuzz; docs/testing.md).
#
#   deploy/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   fuzz each target for a bounded time (default 60 s)
#   deploy/fuzz.sh --smoke [TARGET...]                run each target once over its seed corpus (CI)
#
# Targets: http_request api_body ws_message envelope rfc3339 csv browser docker (default: all). The build is
# separate from the normal one: clang-16 (CC/CXX override), -DATRIUM_FUZZ=ON, in
# $ATRIUM_FUZZ_BUILD (default build-fuzz). New corpus inputs go to BUILD/corpus/TARGET,
# crashing inputs to BUILD/findings/TARGET (ATRIUM_FUZZ_FINDINGS_DIR overrides the root).
# A fuzzing run restarts the target after a crash until its time is up, so that one
# known bug does not hide the others; the script exits 1 if any target left a finding, 2 on a
# usage or build error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${ATRIUM_FUZZ_BUILD:-$ROOT/build-fuzz}
FINDINGS=${ATRIUM_FUZZ_FINDINGS_DIR:-$BUILD/findings}
export CC=${CC:-clang-16} CXX=${CXX:-clang++-16}
# Symbolized stack traces (bookworm's clang-16 comes without llvm-symbolizer; llvm-14's works).
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]]; then
  for s in /usr/lib/llvm-16/bin/llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer "$(command -v llvm-symbolizer || true)"; do
    if [[ -x "$s" ]]; then
      export ASAN_SYMBOLIZER_PATH=$s UBSAN_SYMBOLIZER_PATH=$s
      break
    fi
  done
fi
ALL=(http_request api_body ws_message envelope rfc3339 csv browser cron change_set container_state docker row_codec)

smoke=0
seconds=60
targets=()
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      if [[ "$arg" =~ ^[0-9]+$ ]] && ((${#targets[@]} == 0)) && ((smoke == 0)); then
        seconds=$arg
      elif [[ " ${ALL[*]} " == *" ${arg%_fuzz} "* ]]; then
        targets+=("${arg%_fuzz}")
      else
        echo "fuzz.sh: unknown target or argument: $arg (targets: ${ALL[*]})" >&2
        exit 2
      fi
      ;;
  esac
done
((${#targets[@]} > 0)) || targets=("${ALL[@]}")

command -v "$CXX" >/dev/null || {
  echo "fuzz.sh: $CXX not found (apt-get install clang-16 libclang-rt-16-dev)" >&2
  exit 2
}

build_targets=()
for t in "${targets[@]}"; do build_targets+=("${t}_fuzz"); done
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATRIUM_FUZZ=ON -DBUILD_TESTING=OFF \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" >/dev/null || exit 2
fi
cmake --build "$BUILD" --target "${build_targets[@]}" -j"${JOBS:-2}" || exit 2

dict_of() {
  case "$1" in
    http_request) echo "$ROOT/tests/fuzz/http.dict" ;;
    api_body | ws_message) echo "$ROOT/tests/fuzz/json.dict" ;;
    rfc3339) echo "$ROOT/tests/fuzz/rfc3339.dict" ;;
    *) echo "" ;;
  esac
}

found=0
for t in "${targets[@]}"; do
  bin="$BUILD/tests/fuzz/${t}_fuzz"
  seeds="$ROOT/tests/fuzz/corpus/$t"
  out="$FINDINGS/$t"
  work="$BUILD/corpus/$t"
  tmp="$BUILD/tmp/$t"
  mkdir -p "$out" "$work" "$tmp"
  rm -rf "${tmp:?}"/*
  dict=$(dict_of "$t")
  args=(-artifact_prefix="$out/" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1)
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  [[ "$t" == http_request ]] && args+=(-max_len=8192)
  before=$(find "$out" -type f | wc -l)
  start=$(date +%s)
  export ATRIUM_FUZZ_TMP="$tmp" ATRIUM_FUZZ_FINDINGS="$out"
  if ((smoke)); then
    echo "== $t: seed corpus once"
    rc=0
    "$bin" "${args[@]}" -runs=0 "$seeds" >"$BUILD/$t.log" 2>&1 || rc=$?
  else
    echo "== $t: fuzzing for ${seconds} s (log $BUILD/$t.log)"
    # One process at a time, restarted after a crash until the time is up (the stateful
    # targets set up a store per process, which -fork mode would redo for every job).
    rc=0
    : >"$BUILD/$t.log"
    deadline=$((start + seconds))
    quick=0
    while (($(date +%s) < deadline)); do
      began=$(date +%s)
      run_rc=0
      "$bin" "${args[@]}" -max_total_time=$((deadline - began)) "$work" "$seeds" >>"$BUILD/$t.log" 2>&1 || run_rc=$?
      ((run_rc == 0)) && break
      rc=$run_rc
      # A crash on the corpus itself would repeat at once: stop after three quick ones.
      if (($(date +%s) - began < 10)); then quick=$((quick + 1)); else quick=0; fi
      ((quick < 3)) || break
      rm -rf "${tmp:?}"/*
    done
  fi
  rm -rf "${tmp:?}"/*
  after=$(find "$out" -type f | wc -l)
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|INFO: fuzzed for)' "$BUILD/$t.log" | tail -2 | sed 's/^/   /' || true
  echo "   rc=$rc, $((after - before)) new finding(s), $(($(date +%s) - start)) s"
  if ((rc != 0 || after > before)); then
    found=1
    grep -E 'ERROR: |FINDING|runtime error|SUMMARY' "$BUILD/$t.log" | head -5 | sed 's/^/   /' || true
  fi
done
if ((found)); then
  echo "fuzz.sh: findings (see $FINDINGS and the logs in $BUILD)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
