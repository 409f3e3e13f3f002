# shellcheck shell=bash
# .ci/env.sh — SOURCED (not executed) by .ci/*.sh, and by hand:  source .ci/env.sh
#
# Exports what the wasm32 build and the browser tests need, and defines:
#   wasm_run CMD...   run any command with the toolchain that can build wasm32
#                     (use it for wasm-pack, wasm-bindgen-test-runner, ...)
#   wasm_cargo ARGS   = wasm_run cargo ARGS   (cargo build/test/clippy --target wasm32-...)
#   host_cargo ARGS   cargo of the default (rustup) toolchain, for native builds/tests
#   kw_wasm_std_dir RUSTC   prints the wasm32 libdir of RUSTC if it holds a libstd, else fails
#
# Which toolchain builds wasm32 (KW_WASM_TOOLCHAIN):
#   "default"  the default rustc on PATH has a wasm32 std (a laptop with
#              `rustup target add wasm32-unknown-unknown`): nothing special, wasm_run = plain.
#   "debian"   it does not, but Debian's /usr/bin/rustc (package rustc-web) has the wasm32 std
#              that .ci/setup.sh built from rust-web-src into /usr/lib/rustlib/wasm32-unknown-unknown.
#              wasm_run then puts /usr/bin FIRST on PATH (only for that command) and pins
#              RUSTC/RUSTDOC to /usr/bin. Why PATH and not `rustup toolchain link debian /usr`
#              + RUSTUP_TOOLCHAIN=debian: the PATH route needs no rustup state, works on a box
#              without rustup, and covers every tool that shells out to `cargo`/`rustc` itself
#              (wasm-pack runs `rustc --print sysroot` to look for the wasm32 target and would
#              otherwise run `rustup target add`, which hangs here). ~/.cargo/bin stays on PATH
#              after /usr/bin, so wasm-pack / wasm-bindgen / wasm-bindgen-test-runner are still
#              found (nothing of those names lives in /usr/bin).
#   "none"     neither: run .ci/setup.sh first. wasm_run then just runs the command (and fails).
#
# Safe under `set -euo pipefail` in the caller; changes no shell options; idempotent.

KW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KW_ROOT

# --- PATH: ~/.cargo/bin (wasm-bindgen, wasm-pack), node_modules/.bin (wasm-opt from binaryen) ---
_kw_cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$_kw_cargo_bin:"*) ;; *) PATH="$_kw_cargo_bin:$PATH" ;; esac
case ":$PATH:" in *":$KW_ROOT/node_modules/.bin:"*) ;; *) PATH="$KW_ROOT/node_modules/.bin:$PATH" ;; esac
export PATH
unset _kw_cargo_bin

# --- browser tests (wasm-bindgen-test in headless Chromium; flags live in ./webdriver.json) ---
if [ -z "${CHROMEDRIVER:-}" ]; then
  if [ -x /usr/bin/chromedriver ]; then CHROMEDRIVER=/usr/bin/chromedriver
  else CHROMEDRIVER="$(command -v chromedriver 2>/dev/null || echo /usr/bin/chromedriver)"; fi
fi
export CHROMEDRIVER
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER:-wasm-bindgen-test-runner}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"

# --- which toolchain builds wasm32 ---
kw_wasm_std_dir() {
  local rustc_bin="${1:-rustc}" dir f
  dir="$("$rustc_bin" --print target-libdir --target wasm32-unknown-unknown 2>/dev/null)" || return 1
  for f in "$dir"/libstd-*.rlib; do
    [ -e "$f" ] && { printf '%s\n' "$dir"; return 0; }
  done
  return 1
}

KW_WASM_TOOLCHAIN=none
if command -v rustc >/dev/null 2>&1 && kw_wasm_std_dir rustc >/dev/null; then
  KW_WASM_TOOLCHAIN=default
elif [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && kw_wasm_std_dir /usr/bin/rustc >/dev/null; then
  KW_WASM_TOOLCHAIN=debian
fi
export KW_WASM_TOOLCHAIN

# Linker: rustc links wasm32 with `rust-lld` (rustup ships it in the sysroot; Debian's rustc
# has none of its own, rust-web-llvm may provide /usr/bin/rust-lld). Fall back to wasm-ld-22.
if [ "$KW_WASM_TOOLCHAIN" = debian ] && [ -z "${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER:-}" ] \
   && ! command -v rust-lld >/dev/null 2>&1; then
  for _kw_ld in wasm-ld-22 wasm-ld; do
    if command -v "$_kw_ld" >/dev/null 2>&1; then
      export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$_kw_ld"; break
    fi
  done
  unset _kw_ld
fi

wasm_run() {
  if [ "$KW_WASM_TOOLCHAIN" = debian ]; then
    # `env -u` drops a RUSTUP_TOOLCHAIN inherited from an outer rustup proxy (harmless for
    # Debian's cargo, but it would confuse any rustup proxy a tool might still reach).
    # Own target dir: the two toolchains would otherwise keep invalidating each
    # other's build cache in target/.
    env -u RUSTUP_TOOLCHAIN PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
      CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KW_ROOT/target/wasm}" "$@"
  else
    "$@"
  fi
}
wasm_cargo() { wasm_run cargo "$@"; }
host_cargo() { command cargo "$@"; }
