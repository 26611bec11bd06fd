#!/usr/bin/env bash
# Long property-based fuzzing of the attacker-facing parsers (path canonicalisation, token
# pre-parsing, identity-header sanitising, config parsing). Bounded: FUZZ_SECONDS (default 600)
# at most, PROPTEST_CASES (default 200000) cases per property. A failure prints the minimal
# failing input; add it to the matching unit test as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${PROPTEST_CASES:-200000}
timeout "${FUZZ_SECONDS:-600}" cargo test --release --locked --test properties -- --nocapture
