#!/usr/bin/env bash
# .ci/wasm-browsers.sh — the browser adapter's wasm-bindgen tests (src/browser/tests.rs),
# once per browser engine, against one Klaviyo emulator (tests/with-emulator.mjs).
#
#   bash .ci/wasm-browsers.sh                      chromium, firefox, webkit
#   bash .ci/wasm-browsers.sh firefox              only some engines
#   bash .ci/wasm-browsers.sh firefox -- consent   extra `cargo test` args after --
#   KW_WASM_BROWSERS="chromium firefox" bash .ci/wasm-browsers.sh
#
# Prints one result line per engine (PASS / FAIL / SKIP) after its run and again as a
# summary at the end. An engine whose driver, browser or display is missing is SKIPPED,
# always with the reason, and under CI=true it FAILS (with what to install). Exits
# non-zero if any engine failed.
#
# How wasm-bindgen-test-runner (0.2.130) picks the browser: the first of the env vars
# GECKODRIVER, SAFARIDRIVER, CHROMEDRIVER, MSEDGEDRIVER that is set (in that order; any
# *_REMOTE var wins over all of them), and the capabilities from the file named by
# WASM_BINDGEN_TEST_WEBDRIVER_JSON (default ./webdriver.json). So each run below clears
# every driver var and sets exactly one, with its own capabilities file:
#   chromium  CHROMEDRIVER (from .ci/env.sh), ./webdriver.json (goog:chromeOptions).
#   firefox   GECKODRIVER (env, else `geckodriver` on PATH, i.e. ~/.cargo/bin from
#             `cargo install geckodriver --locked`); capabilities generated into a temp
#             dir: moz:firefoxOptions.binary = $FIREFOX_BIN, else firefox-esr / firefox on
#             PATH. The runner adds -headless itself.
#   webkit    SAFARIDRIVER=WebKitWebDriver (Debian: webkit2gtk-driver). The runner's Safari
#             mode sends EMPTY capabilities (it ignores webdriver.json), so WebKitWebDriver
#             starts its compiled-in default browser, WebKitGTK's MiniBrowser, which cannot
#             be asked for --headless that way and needs a display: the run uses $DISPLAY /
#             $WAYLAND_DISPLAY if set, else wraps itself in `xvfb-run -a` (package xvfb).
set -euo pipefail
exec </dev/null
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=.ci/env.sh
. "$ROOT/.ci/env.sh"

ALL_ENGINES=(chromium firefox webkit)
ENGINES=() CARGO_EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; CARGO_EXTRA=("$@"); break ;;
    chromium|firefox|webkit) ENGINES+=("$1"); shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'wasm-browsers: unknown engine %q (known: %s)\n' "$1" "${ALL_ENGINES[*]}" >&2; exit 2 ;;
  esac
done
if [ ${#ENGINES[@]} -eq 0 ]; then
  # shellcheck disable=SC2206  # word splitting of the list is the point
  ENGINES=(${KW_WASM_BROWSERS:-${ALL_ENGINES[*]}})
fi

# One emulator for every engine: re-run this script under tests/with-emulator.mjs (which
# exports KLAVIYO_EMULATOR; the tests read it at compile time, and its port is fixed, so
# the wasm test build is shared by all engines and by .ci/test.sh).
if [ -z "${KW_WASM_BROWSERS_INNER:-}" ]; then
  exec env KW_WASM_BROWSERS_INNER=1 node "$ROOT/tests/with-emulator.mjs" \
    bash "$ROOT/.ci/wasm-browsers.sh" "${ENGINES[@]}" -- "${CARGO_EXTRA[@]}"
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ------------------------------------------------------------------ per-engine set-up
# Each prepare_<engine> sets DRIVER_VAR, DRIVER, CAPS, WRAP, DESC, or SKIP (the reason).
DRIVER_VAR="" DRIVER="" CAPS="" WRAP=() DESC="" SKIP=""

prepare_chromium() {
  DRIVER_VAR=CHROMEDRIVER CAPS="$ROOT/webdriver.json"
  if [ ! -f "$CAPS" ]; then SKIP="no webdriver.json at the repo root (headless Chromium flags)"; return; fi
  local bin
  bin="$(sed -n 's/.*"binary"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$CAPS" | head -n1)"
  if [ -n "$bin" ] && [ ! -x "$bin" ]; then SKIP="the browser $bin named in webdriver.json is not installed (apt-get install chromium)"; return; fi
  DRIVER="${CHROMEDRIVER:-}"
  if [ -z "$DRIVER" ] || [ ! -x "$DRIVER" ]; then SKIP="no chromedriver at '${DRIVER}' (apt-get install chromium-driver, or set CHROMEDRIVER)"; return; fi
  DESC="$({ "${bin:-chromium}" --version 2>/dev/null || true; } | head -n1)"
  DESC="${DESC:-chromium} via $DRIVER"
}

prepare_firefox() {
  DRIVER_VAR=GECKODRIVER
  DRIVER="${GECKODRIVER:-$(command -v geckodriver 2>/dev/null || true)}"
  if [ -z "$DRIVER" ] || [ ! -x "$DRIVER" ]; then
    SKIP="no geckodriver (${GECKODRIVER:+GECKODRIVER=$GECKODRIVER is not executable; }not on PATH nor in ~/.cargo/bin: cargo install geckodriver --locked)"
    return
  fi
  local ff="${FIREFOX_BIN:-}" c
  if [ -z "$ff" ]; then
    for c in firefox-esr firefox; do ff="$(command -v "$c" 2>/dev/null || true)"; [ -n "$ff" ] && break; done
  fi
  if [ -z "$ff" ] || [ ! -x "$ff" ]; then SKIP="no Firefox binary (${FIREFOX_BIN:+FIREFOX_BIN=$FIREFOX_BIN is not executable; }no firefox-esr / firefox on PATH: apt-get install firefox-esr)"; return; fi
  CAPS="$TMP/webdriver-firefox.json"
  # The runner appends "-headless" to args itself. The prefs keep an offline CI box quiet
  # (geckodriver and Marionette already turn off updates, telemetry and safebrowsing).
  cat >"$CAPS" <<EOF
{
  "moz:firefoxOptions": {
    "binary": "$ff",
    "args": [],
    "prefs": {
      "network.captive-portal-service.enabled": false,
      "network.connectivity-service.enabled": false,
      "browser.region.network.url": "",
      "browser.search.update": false
    }
  }
}
EOF
  DESC="$({ "$ff" --version 2>/dev/null || true; } | head -n1)"
  DESC="${DESC:-$ff} via $DRIVER ($({ "$DRIVER" --version 2>/dev/null || true; } | head -n1))"
}

prepare_webkit() {
  DRIVER_VAR=SAFARIDRIVER
  DRIVER="${WEBKITWEBDRIVER:-$(command -v WebKitWebDriver 2>/dev/null || true)}"
  if [ -z "$DRIVER" ] || [ ! -x "$DRIVER" ]; then SKIP="no WebKitWebDriver on PATH (apt-get install webkit2gtk-driver)"; return; fi
  # The browser WebKitWebDriver launches when given no capabilities: compiled into it.
  local mb
  mb="$(grep -a -o '/[[:alnum:]/._-]*/MiniBrowser' "$DRIVER" 2>/dev/null | head -n1 || true)"
  if [ -n "$mb" ] && [ ! -x "$mb" ]; then
    SKIP="WebKitWebDriver's default browser $mb is not installed; wasm-bindgen-test-runner's Safari mode sends no capabilities, so no other browser can be named"
    return
  fi
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    WRAP=()
  elif command -v xvfb-run >/dev/null 2>&1; then
    WRAP=(xvfb-run -a)
  else
    SKIP="no display (DISPLAY/WAYLAND_DISPLAY unset) and no xvfb-run: WebKitGTK's MiniBrowser needs one, and wasm-bindgen-test-runner's Safari mode sends empty capabilities, so it cannot ask for headless (apt-get install xvfb)"
    return
  fi
  CAPS="$TMP/webdriver-empty.json"   # ignored in Safari mode anyway
  echo '{}' >"$CAPS"
  DESC="${mb:-MiniBrowser} (WebKitGTK) via $DRIVER${WRAP:+ under ${WRAP[*]}}"
}

# ------------------------------------------------------------------ runs
# Inside: .ci/env.sh again (wasm_cargo is a shell function), then exactly one driver var.
INNER='. "$KW_ROOT/.ci/env.sh" || exit 1
unset CHROMEDRIVER GECKODRIVER SAFARIDRIVER MSEDGEDRIVER
[ -z "${KW_DRIVER_VAR:-}" ] || export "$KW_DRIVER_VAR=$KW_DRIVER"
wasm_cargo test "$@"'

RESULTS=() FAILED=0
result() { RESULTS+=("$1"); printf '%s\n' "$1"; }

# Which engines can run at all (decided before building anything).
RUNNABLE=0
for engine in "${ENGINES[@]}"; do
  SKIP="" WRAP=(); "prepare_$engine"; [ -n "$SKIP" ] || RUNNABLE=$((RUNNABLE + 1))
done

# Build the test wasm once, so a compile error is reported once and not per engine.
BUILD_OK=1
if [ "$RUNNABLE" -gt 0 ]; then
  printf '\n== wasm-bindgen tests: build (cargo test --no-run)\n'
  if ! bash -c "$INNER" _ --target wasm32-unknown-unknown --lib --no-run \
         ${CARGO_EXTRA[@]+"${CARGO_EXTRA[@]}"} 2>&1; then
    BUILD_OK=0 FAILED=1
  fi
fi

for engine in "${ENGINES[@]}"; do
  DRIVER_VAR="" DRIVER="" CAPS="" WRAP=() DESC="" SKIP=""
  "prepare_$engine"
  if [ -n "$SKIP" ]; then
    printf '\n'
    # In CI a missing engine is a failure: a run that tested no browser must not pass.
    if [ "${CI:-}" = true ]; then
      FAILED=1
      result "FAIL $engine: missing under CI=true: $SKIP"
    else
      result "SKIP $engine: $SKIP"
    fi
    continue
  fi
  if [ "$BUILD_OK" = 0 ]; then
    result "FAIL $engine: not run, the wasm test build failed (output above)"
    continue
  fi
  printf '\n== wasm-bindgen tests in %s: %s\n' "$engine" "$DESC"
  log="$TMP/$engine.log"
  t0=$SECONDS
  set +e
  env -u CHROMEDRIVER_REMOTE -u GECKODRIVER_REMOTE -u SAFARIDRIVER_REMOTE -u MSEDGEDRIVER_REMOTE \
      KW_DRIVER_VAR="$DRIVER_VAR" KW_DRIVER="$DRIVER" WASM_BINDGEN_TEST_WEBDRIVER_JSON="$CAPS" \
      ${WRAP[@]+"${WRAP[@]}"} bash -c "$INNER" _ --target wasm32-unknown-unknown --lib \
      ${CARGO_EXTRA[@]+"${CARGO_EXTRA[@]}"} 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  took=$((SECONDS - t0))
  summary="$(grep -a -o 'test result: [a-zA-Z]*\. [0-9]* passed; [0-9]* failed' "$log" | tail -n1 || true)"
  if [ "$rc" = 0 ] && [[ "$summary" == "test result: ok."* ]]; then
    result "PASS $engine: ${summary#test result: ok. } in ${took} s ($DESC)"
  else
    FAILED=1
    why="exit $rc"
    if [ -n "$summary" ]; then why+=", ${summary#test result: }"
    else why+=', no "test result" line'; fi
    result "FAIL $engine: $why in ${took} s ($DESC; output above)"
  fi
done

printf '\n== wasm-bindgen tests per engine\n'
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
