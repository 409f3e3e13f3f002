#!/usr/bin/env bash
# .ci/fixtures.sh [--pack-only] — the packed package in real projects.
#
#   1. builds dist/web, dist/edge and dist/script if missing (`.ci/test.sh` has just built them);
#   2. `npm pack` into a temp dir (--pack-only: into target/pack/, lists it and stops);
#   3. installs each fixture under tests/fixtures/: its pinned devDependencies from its
#      committed package-lock.json (`npm ci`, skipped while node_modules matches the lock),
#      then the tarball (`npm install --no-save`, skipped while it is the same tarball);
#   4. runs tests/fixtures/run.test.mjs (node --test), which builds each fixture the way a
#      user would and runs it: Vite, webpack and esbuild builds and the script tag in
#      Chromium against the Klaviyo emulator, a Hono app mounting klaviyo-wasm/edge in
#      workerd (Miniflare), a Node backend signing with klaviyo-wasm/sign, and tsc.
#
# Needs network to the npm registry the first time (and whenever a lock file changes).
# Install scripts are not run (--ignore-scripts): esbuild and Vite's native parts come as
# optional dependencies.
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FIXTURES="$ROOT/tests/fixtures"
STARTED=$SECONDS

log()  { printf '[fixtures] %s\n' "$*"; }
warn() { printf '[fixtures] WARNING: %s\n' "$*" >&2; }
die()  { printf '[fixtures] ERROR: %s\n' "$*" >&2; exit 1; }

pack_only=false
case "${1:-}" in
  --pack-only) pack_only=true ;;
  "") ;;
  *) echo "usage: $0 [--pack-only]" >&2; exit 2 ;;
esac

command -v npm >/dev/null 2>&1 || die "npm not found"

# ---------- 1. builds ----------
if [ ! -f dist/web/index.js ] || [ ! -f dist/web/klaviyo_wasm_bg.wasm ]; then
  log "dist/web is missing: bash .ci/build.sh"
  bash .ci/build.sh
fi
if [ ! -f dist/edge/worker.mjs ] || [ ! -f dist/edge/klaviyo_edge_bg.wasm ]; then
  log "dist/edge is missing: bash .ci/build.sh edge"
  bash .ci/build.sh edge
fi
if [ ! -f dist/script/klaviyo-wasm.js ]; then
  log "dist/script is missing: bash .ci/build.sh script"
  if ! bash .ci/build.sh script; then
    warn "could not build dist/script: the package lacks klaviyo-wasm/script and the script-tag fixture is skipped"
  fi
fi

# ---------- 2. npm pack ----------
if $pack_only; then
  PACK_DIR="$ROOT/target/pack"
  rm -rf "$PACK_DIR"; mkdir -p "$PACK_DIR"
else
  PACK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/klaviyo-wasm-pack.XXXXXX")"
  trap 'rm -rf "$PACK_DIR"' EXIT
fi
tgz_name="$(npm pack --silent --pack-destination "$PACK_DIR" | tail -n 1)"
TGZ="$PACK_DIR/$tgz_name"
[ -f "$TGZ" ] || die "npm pack wrote no tarball (expected $TGZ)"
log "packed ${TGZ#"$ROOT"/} ($(wc -c <"$TGZ" | tr -d ' ') bytes, $(tar -tzf "$TGZ" | wc -l | tr -d ' ') files)"
if $pack_only; then
  tar -tzvf "$TGZ" | awk '{ printf "  %9s  %s\n", $3, $6 }'
  exit 0
fi

# ---------- 3. install the fixtures ----------
stamp_of() { cat "$@" | cksum | awk '{ print $1 "-" $2 }'; }
TGZ_STAMP="$(stamp_of "$TGZ")"
NPM_FLAGS=(--no-audit --no-fund --ignore-scripts --loglevel=error)

install_fixture() { # install_fixture DIR
  local dir=$1 name deps_stamp pkg_stamp want t0=$SECONDS
  name="$(basename "$dir")"
  deps_stamp="$dir/node_modules/.fixture-deps"
  pkg_stamp="$dir/node_modules/.fixture-klaviyo-wasm"
  if [ -f "$dir/package-lock.json" ]; then
    want="$(stamp_of "$dir/package.json" "$dir/package-lock.json")"
    if [ "$(cat "$deps_stamp" 2>/dev/null || true)" != "$want" ]; then
      log "$name: npm ci (its pinned devDependencies)"
      (cd "$dir" && npm ci "${NPM_FLAGS[@]}") || die "$name: npm ci failed"
      printf '%s\n' "$want" >"$deps_stamp"
      rm -f "$pkg_stamp" # npm ci emptied node_modules
    fi
  fi
  if [ "$(cat "$pkg_stamp" 2>/dev/null || true)" != "$TGZ_STAMP" ] || [ ! -f "$dir/node_modules/klaviyo-wasm/package.json" ]; then
    (cd "$dir" && npm install --no-save "${NPM_FLAGS[@]}" "$TGZ") || die "$name: npm install of the tarball failed"
    printf '%s\n' "$TGZ_STAMP" >"$pkg_stamp"
    log "$name: installed the tarball ($((SECONDS - t0)) s)"
  else
    log "$name: already installed (same lock file, same tarball)"
  fi
}

for dir in "$FIXTURES"/*/; do
  dir="${dir%/}"
  [ -f "$dir/package.json" ] || continue
  install_fixture "$dir"
done
log "installs done in $((SECONDS - STARTED)) s"

# ---------- 4. run ----------
status=0
KLAVIYO_WASM_TGZ="$TGZ" node --test --test-concurrency=1 --test-reporter=spec "$FIXTURES/run.test.mjs" || status=$?
log "done in $((SECONDS - STARTED)) s"
exit "$status"
