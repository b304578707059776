#!/usr/bin/env bash
# Runs libFuzzer targets of the avr-fuzz executable (build it first: `make fuzz` does both).
# Usage: Tests/Fuzz/run.sh [target...]   (default: every directory under Tests/Fuzz/corpus)
# Env: FUZZ_SECONDS (60) per target, FUZZ_JOBS (2) targets at a time, FUZZ_NICE (10),
#      FUZZ_BIN (.build-fuzz/debug/avr-fuzz), FUZZ_WORK (.build-fuzz/fuzz) for corpora and logs.
# Each target starts from a scratch copy of its committed seeds, so runs never dirty the repo.
# Prints one line per target; exits 1 if any target crashed, with the crash artifact path.
set -u
cd "$(dirname "$0")/../.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
NICE=${FUZZ_NICE:-10}
BIN=${FUZZ_BIN:-.build-fuzz/debug/avr-fuzz}
WORK=${FUZZ_WORK:-.build-fuzz/fuzz}
SEEDS=Tests/Fuzz/corpus
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$SEEDS"/*/; do targets+=("$(basename "$d")"); done
fi
[ -x "$BIN" ] || { echo "fuzz: $BIN not built" >&2; exit 2; }

run_one() {
  local t=$1 corpus="$WORK/corpus/$1" artifacts="$WORK/artifacts/$1/" log="$WORK/logs/$1.log"
  mkdir -p "$corpus" "$artifacts" "$WORK/logs"
  [ -d "$SEEDS/$t" ] && cp -n "$SEEDS/$t"/* "$corpus"/ 2>/dev/null
  AVR_FUZZ_TARGET=$t SWIFT_BACKTRACE=enable=no \
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} LSAN_OPTIONS=suppressions=$PWD/Tests/lsan.supp \
    nice -n "$NICE" "$BIN" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1
  echo $? >"$log.rc"
}
export -f run_one
export WORK SEEDS BIN NICE SECONDS_PER_TARGET

printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'

failed=0
printf '%-14s %8s %12s %9s %7s %7s %10s  %s\n' target seconds executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
  log="$WORK/logs/$t.log"
  rc=$(cat "$log.rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
  artifact=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1)
  result=ok
  if [ "$rc" != 0 ] || [ -n "$artifact" ]; then
    failed=1
    result="FAILED (exit $rc) artifact: ${artifact:-none}; log: $log"
  fi
  printf '%-14s %8s %12s %9s %7s %7s %10s  %s\n' "$t" "$SECONDS_PER_TARGET" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$result"
done
exit $failed
