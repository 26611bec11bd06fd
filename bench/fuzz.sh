#!/usr/bin/env bash
# Long property-based fuzzing of the attacker-facing parsers: path canonicalisation, token
# pre-parsing, identity-header sanitising, config parsing, the vendor auth API's response
# parser (`parse_response`) and the mapping from verified claims to identity headers. Each
# property's claim is "returns a value or an error, never panics", plus what an accepted value
# must satisfy. Bounded: FUZZ_SECONDS (default 120) of running, after an untimed release build,
# and PROPTEST_CASES (default 200000) cases per property; reaching the time limit without a
# failure is a pass. A failure prints the minimal failing input: save it as a new case in
# tests/fuzz_corpus/<target>/ (provider or claims; format in tests/fuzz_corpus/README.md), or
# for the other parsers add it to the matching unit test, so `cargo test` keeps checking it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${PROPTEST_CASES:-200000}
cargo test --release --locked --test properties --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
timeout "${FUZZ_SECONDS:-120}" cargo test --release --locked --test properties -- --nocapture 2>&1 |
    tee "$log" || status=${PIPESTATUS[0]}
if [[ $status -eq 124 ]] && ! grep -qE 'panicked at|FAILED|^failures:' "$log"; then
    echo "fuzz.sh: ${FUZZ_SECONDS:-120}s limit reached without a failure"
    exit 0
fi
exit "$status"
