#!/usr/bin/env bash
# Screenshots of every console panel, taken by the browser test against a gateway with live
# traffic: target/console-screenshots/<panel>.png and console.png (the whole page).
# Needs chromium, chromium-driver and Python's selenium (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/target/console-screenshots}
TOLLGATE_REQUIRE_BROWSER=1 TOLLGATE_SCREENSHOTS="$OUT" \
  cargo test --locked --test console the_console_shows_every_panel_in_chromium_and_no_secret
ls -1 "$OUT"
