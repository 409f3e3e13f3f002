#!/usr/bin/env bash
# .ci/test.sh: every test of the project, layer by layer. Run through `npm test`, which
# runs .ci/setup.sh first. Stops at the first failing layer.
set -euo pipefail
exec </dev/null
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=.ci/env.sh
. "$ROOT/.ci/env.sh"

step() { printf '\n== %s\n' "$*"; }
WASM=(--target wasm32-unknown-unknown)

step "format (cargo fmt --check)"
host_cargo fmt --check

step "lint, wasm32 browser build (cargo clippy -D warnings)"
wasm_cargo clippy "${WASM[@]}" --all-targets -- -D warnings
step "lint, wasm32 edge build (cargo clippy -D warnings)"
wasm_cargo clippy "${WASM[@]}" --no-default-features --features edge --all-targets -- -D warnings
step "lint, native core + edge (cargo clippy -D warnings)"
host_cargo clippy --all-targets --features edge -- -D warnings

step "core and edge logic, native (cargo test)"
host_cargo test --features edge -- --skip fuzz_the_router

# The router's property-based fuzzing (proptest): a bounded number of cases, printed.
FUZZ_CASES="${FUZZ_CASES:-3000}"
step "edge router fuzzing (proptest, $FUZZ_CASES cases)"
FUZZ_CASES="$FUZZ_CASES" host_cargo test -q --features edge --lib fuzz_the_router
printf 'fuzz: %s random requests through decide, the gate and the upstream policy: no panic, every answer a JSON:API error or a forward, no secret in any answer\n' "$FUZZ_CASES"

step "browser adapter in Chromium, Firefox ESR and WebKit (wasm-bindgen-test against the emulator; a missing engine is SKIP, and under CI=true a FAIL naming what to install)"
bash .ci/wasm-browsers.sh

step "release build of the browser package + size budget"
bash .ci/build.sh
node .ci/size.mjs
step "release build of the edge worker"
bash .ci/build.sh edge

step "emulator, builds, demo page, durable queue, edge worker (node --test: Playwright + Chromium, miniflare + workerd)"
suites=(tests/emulator/ tests/build/ tests/e2e/ tests/queue/ tests/edge/)
for extra in tests/script/ tests/consent/ tests/parity/; do [ -d "$extra" ] && suites+=("$extra"); done
node --test --test-concurrency=1 "${suites[@]}"

step "the durable queue in Chromium, Firefox ESR and WebKitGTK (WebDriver; one line per engine and scenario)"
bash .ci/engines.sh --run-only

if [ -f .ci/fixtures.sh ]; then
  step "the packed package in real projects (npm pack -> Vite, webpack, esbuild, HTML, Hono in workerd, Node signer, tsc)"
  bash .ci/fixtures.sh
fi
