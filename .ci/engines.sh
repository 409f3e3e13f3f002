#!/usr/bin/env bash
# .ci/engines.sh — the engine matrix (issue 10): installs what it needs when missing, then
# runs tests/engines/ (Chromium, Firefox ESR and WebKitGTK over WebDriver).
#
#   bash .ci/engines.sh                 install what is missing, then run the matrix
#   bash .ci/engines.sh --install-only  only install (for .ci/setup.sh)
#   bash .ci/engines.sh --run-only      only run (for .ci/test.sh, after setup)
#
# What it installs, each only when missing, and how long each took:
#   apt   chromium chromium-driver   Chromium + chromedriver
#         firefox-esr                Firefox ESR
#         webkit2gtk-driver          WebKitWebDriver (+ WebKitGTK's MiniBrowser)
#         xvfb                       a display for WebKitGTK (its MiniBrowser has no headless mode)
#   cargo geckodriver                `cargo install geckodriver --locked` (about 3 min on 2 CPUs)
#   npm   selenium-webdriver         the devDependencies, from package-lock.json
# apt-get runs as root, or through `sudo -n` when not root; KW_SKIP_APT=1 never calls it.
# An engine that is still missing is reported SKIP by the matrix, with what to install.
# Env: KW_ENGINES=chromium,firefox,webkit (a subset), KW_SCENARIOS=name,... (a subset), GECKODRIVER, CHROMEDRIVER, FIREFOX_BIN,
#      CHROMIUM_PATH, WEBKIT_WEBDRIVER (explicit paths).
set -euo pipefail
exec </dev/null
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=.ci/env.sh
. "$ROOT/.ci/env.sh"

MODE=all
case "${1:-}" in
  --install-only) MODE=install ;;
  --run-only) MODE=run ;;
  "") ;;
  *) printf 'usage: %s [--install-only|--run-only]\n' "$0" >&2; exit 2 ;;
esac

log()  { printf '[engines] %s\n' "$*"; }
warn() { printf '[engines] WARNING: %s\n' "$*" >&2; }
now()  { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# shellcheck source=.ci/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# apt_for WHAT PKG...: installs the packages not yet installed, timing it.
apt_for() {
  local what=$1; shift
  local missing=() p
  if ! command -v dpkg-query >/dev/null 2>&1; then
    warn "$what: not a Debian-like system; install $* yourself"
    return 0
  fi
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then
    log "$what: present ($*)"
    return 0
  fi
  local t0
  t0=$(now)
  if ! apt_install "${missing[@]}"; then
    warn "$what: missing ${missing[*]} and apt-get is not usable here (root, passwordless sudo, KW_SKIP_APT unset); the matrix will skip it"
    return 0
  fi
  log "$what: installed ${missing[*]} in $(took "$t0")"
}

find_geckodriver() {
  if [ -n "${GECKODRIVER:-}" ] && [ -x "$GECKODRIVER" ]; then printf '%s\n' "$GECKODRIVER"; return 0; fi
  local c="${CARGO_HOME:-$HOME/.cargo}/bin/geckodriver"
  if [ -x "$c" ]; then printf '%s\n' "$c"; return 0; fi
  command -v geckodriver 2>/dev/null
}

install_all() {
  local T0
  T0=$(now)
  apt_for "chromium" chromium chromium-driver
  apt_for "firefox" firefox-esr
  apt_for "webkit" webkit2gtk-driver
  apt_for "display for webkit" xvfb

  local gd
  if gd=$(find_geckodriver); then
    log "geckodriver: present ($gd, $("$gd" --version 2>/dev/null | head -n1))"
  elif command -v cargo >/dev/null 2>&1; then
    local t0
    t0=$(now)
    log "geckodriver: cargo install geckodriver --locked (a few minutes)"
    host_cargo install -q --locked geckodriver
    log "geckodriver: built and installed in $(took "$t0") ($(find_geckodriver))"
  else
    warn "geckodriver: missing and no cargo to build it; the matrix will skip Firefox"
  fi

  if node -e "import('selenium-webdriver').then(() => process.exit(0), () => process.exit(1))" >/dev/null 2>&1; then
    log "npm: selenium-webdriver present"
  else
    local t0
    t0=$(now)
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
    log "npm: devDependencies installed in $(took "$t0")"
  fi
  log "install step: $(took "$T0")"
}

run_matrix() {
  if [ ! -f dist/web/index.js ] || [ ! -f dist/web/inline.js ] || [ ! -f dist/web/klaviyo_wasm_bg.wasm ]; then
    log "dist/web missing: bash .ci/build.sh"
    bash .ci/build.sh
  fi
  local t0 rc=0
  t0=$(now)
  node --test --test-concurrency=1 tests/engines/ || rc=$?
  log "matrix: $(took "$t0") (exit $rc; report in target/engines/matrix.txt)"
  return "$rc"
}

case "$MODE" in
  install) install_all ;;
  run) run_matrix ;;
  all) install_all; run_matrix ;;
esac
