#!/bin/sh
# The libFuzzer run of `make test` (ctest entry fuzz-harnesses): builds the harnesses with clang
# in BUILD_DIR and runs each for SECONDS (default 30, all at once) on a copy of its committed
# corpus under spec/fuzz/corpus, so the run never changes the repository. Exits 77 (ctest:
# skipped) when clang or its libFuzzer runtime is missing, and says so.
#
# usage: tools/fuzz_test.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -u
src=$1
build=$2
seconds=${3:-30}
harnesses="fuzz_proc_net:proc_net fuzz_procfs:procfs fuzz_sock_diag:sock_diag"

if ! command -v clang >/dev/null 2>&1; then
  echo "SKIPPED: clang is not installed (apt-get install clang); the fuzz harnesses need libFuzzer"
  exit 77
fi
probe=$(mktemp -d /tmp/orch-fuzz-probe.XXXXXX)
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
  >"$probe/p.c"
if ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  rm -rf "$probe"
  echo "SKIPPED: clang cannot link -fsanitize=fuzzer (no libFuzzer runtime)"
  exit 77
fi
rm -rf "$probe"

cmake -S "$src" -B "$build" -DORCH_FUZZ=ON -DCMAKE_C_COMPILER=clang -DORCH_VALGRIND=OFF \
  -DORCH_WERROR=OFF >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
targets=""
for h in $harnesses; do
  targets="$targets --target ${h%%:*}"
done
# shellcheck disable=SC2086
cmake --build "$build" -j2 $targets >"$build.build.log" 2>&1 || { cat "$build.build.log"; exit 1; }

work=$(mktemp -d /tmp/orch-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
pids=""
for h in $harnesses; do
  bin=${h%%:*}
  corpus=${h#*:}
  mkdir -p "$work/$corpus"
  cp "$src/spec/fuzz/corpus/$corpus/"* "$work/$corpus/" 2>/dev/null
  "$build/fuzz/$bin" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$build/$bin-" "$work/$corpus" >"$work/$bin.log" 2>&1 &
  pids="$pids $!:$bin"
done
status=0
for p in $pids; do
  pid=${p%%:*}
  bin=${p#*:}
  if wait "$pid"; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$bin.log")
    echo "$bin: ${runs:-?} runs in ${seconds} s, no crash"
  else
    echo "$bin: FAILED"
    tail -n 60 "$work/$bin.log"
    status=1
  fi
done
exit $status
