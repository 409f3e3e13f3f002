#!/usr/bin/env bash
# .ci/setup.sh — idempotent set-up of everything the wasm build and the tests need.
#
# Works on
#   * a machine whose default rustc already has a wasm32 std (a laptop with rustup +
#     `rustup target add wasm32-unknown-unknown`): changes nothing system-wide;
#   * a Debian bookworm machine whose rustup cannot download the wasm32 target: installs
#     Debian's Rust 1.96 (rustc-web, cargo-web, rust-web-src, rust-web-clippy) + lld-22 and
#     builds the wasm32 std once from Debian's source into /usr/lib/rustlib (see
#     ../../shared/TOOLCHAIN.md or the comments below).
# In both cases: chromium + chromedriver (browser tests), wasm-bindgen-cli at exactly the
# version of the `wasm-bindgen` crate, wasm-pack, and the npm devDependencies.
#
# Every step checks first and skips what is already there: a re-run takes about a second.
# Non-interactive (CI=true, no stdin). Env knobs:
#   KW_SKIP_APT=1       never call apt-get (only warn about missing packages)
#   KW_REBUILD_SYSROOT=1  rebuild the Debian wasm32 std even if it looks fine
set -euo pipefail

# /dev/null must be the null device. On some sandboxes it is (or becomes) a regular file
# that collects whatever is written to it; every program that then reads it (Rust's
# Stdio::null opens it: cargo's rustc probe does) gets that text as input and fails
# ("failed to run `rustc` to learn about target-specific information"). Repair it when
# we can (root), and say so.
if [ ! -c /dev/null ]; then
  if [ "$(id -u)" = 0 ] && mknod -m 666 /dev/null.kw c 1 3 2>/dev/null && mv -f /dev/null.kw /dev/null; then
    printf '[setup] /dev/null was not a device: recreated it\n'
  else
    printf '[setup] WARNING: /dev/null is not a device and cannot be repaired here\n' >&2
  fi
fi
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$SECONDS
log()  { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=.ci/env.sh
. "$ROOT/.ci/env.sh"

WASM_TARGET=wasm32-unknown-unknown
DEBIAN_RUST_PKGS=(rustc-web cargo-web rust-web-src rust-web-clippy lld-22)
BROWSER_PKGS=(chromium chromium-driver)

# ---------------------------------------------------------------- apt helpers
# shellcheck source=.ci/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# ---------------------------------------------------------------- 1. wasm32 toolchain
if [ "$KW_WASM_TOOLCHAIN" = default ]; then
  log "rust: default rustc has a wasm32 std ($(kw_wasm_std_dir rustc)) — nothing to install"
else
  # Debian route.
  if ! command -v dpkg-query >/dev/null 2>&1; then
    die "the default rustc has no wasm32 std and this is not a Debian-like system.
  With rustup: rustup target add $WASM_TARGET"
  fi
  if apt_install "${DEBIAN_RUST_PKGS[@]}" "${BROWSER_PKGS[@]}"; then
    log "apt: ${DEBIAN_RUST_PKGS[*]} ${BROWSER_PKGS[*]} — installed"
  else
    die "packages missing and apt-get is not usable (need root or passwordless sudo):
  apt-get install ${DEBIAN_RUST_PKGS[*]} ${BROWSER_PKGS[*]}"
  fi

  # (each rustc start costs 0.1-0.5 s: ask it as little as possible on the no-op path)
  DEB_RUSTC=/usr/bin/rustc DEB_CARGO=/usr/bin/cargo
  DEB_LIBDIR="$("$DEB_RUSTC" --print target-libdir --target "$WASM_TARGET")"    # /usr/lib/rustlib/wasm32-unknown-unknown/lib
  DEB_VV="$("$DEB_RUSTC" -vV)"
  DEB_VERSION="$(sed -n 's/^release: //p' <<<"$DEB_VV")"
  STAMP="$DEB_LIBDIR/.klaviyo-wasm-sysroot"

  # The installed std is usable when std and test are there AND rustc accepts std's metadata
  # (a security update of rustc-web makes old rlibs "compiled by an incompatible version").
  sysroot_ok() {
    compgen -G "$DEB_LIBDIR/libstd-*.rlib" >/dev/null || return 1
    compgen -G "$DEB_LIBDIR/libtest-*.rlib" >/dev/null || return 1
    [ "$(cat "$STAMP" 2>/dev/null)" = "$DEB_VV" ] && return 0
    # No/old stamp: probe (type-checks against std's metadata; ~0.2 s).
    echo 'pub fn f() -> std::string::String { std::string::String::new() }' |
      "$DEB_RUSTC" --edition 2021 --target "$WASM_TARGET" --crate-type lib --crate-name kwprobe \
        --emit metadata -o /dev/null - >/dev/null 2>&1
  }

  if [ "${KW_REBUILD_SYSROOT:-0}" != 1 ] && sysroot_ok; then
    log "rust: Debian rustc $DEB_VERSION has a wasm32 std in $DEB_LIBDIR"
  else
    DEB_SYSROOT="$("$DEB_RUSTC" --print sysroot)"                               # /usr
    log "rust: building the wasm32 std from Debian's source ($DEB_SYSROOT/lib/rustlib/src/rust; ~1 min)"
    [ -d "$DEB_SYSROOT/lib/rustlib/src/rust/library" ] || die "no std source: install rust-web-src"
    LINKER=""
    for l in wasm-ld-22 wasm-ld rust-lld; do command -v "$l" >/dev/null 2>&1 && { LINKER=$l; break; }; done
    [ -n "$LINKER" ] || die "no wasm linker (wasm-ld-22): install lld-22"
    if [ "$(id -u)" -ne 0 ]; then
      if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n)
      else die "writing $DEB_LIBDIR needs root (or passwordless sudo)"; fi
    fi
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    mkdir -p "$TMP/src"
    cat >"$TMP/Cargo.toml" <<'EOF'
[package]
name = "kw-sysroot-builder"
version = "0.0.0"
edition = "2021"
publish = false
[lib]
path = "src/lib.rs"
[workspace]
EOF
    : >"$TMP/src/lib.rs"
    # -Zbuild-std needs nightly features: RUSTC_BOOTSTRAP=1 on Debian's stable rustc.
    # -Zforce-unstable-if-unmarked: the std crates must be "unstable" like rustup's own.
    # -Cembed-bitcode=yes: else every LTO build of a cdylib fails ("Can't find section .llvmbc").
    # `test` in the list: else `cargo test --target wasm32-...` fails ("can't find crate for test").
    if ! (cd "$TMP" && env -u RUSTUP_TOOLCHAIN -u CARGO_BUILD_TARGET_DIR -u RUSTC_WRAPPER -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
          PATH="/usr/bin:$PATH" RUSTC="$DEB_RUSTC" RUSTDOC=/usr/bin/rustdoc \
          CARGO_TARGET_DIR="$TMP/target" \
          CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LINKER" \
          RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zforce-unstable-if-unmarked -Cembed-bitcode=yes" \
          "$DEB_CARGO" build -q --release --target "$WASM_TARGET" \
          -Zbuild-std=std,panic_abort,test) >"$TMP/build.log" 2>&1; then
      tail -n 40 "$TMP/build.log" >&2
      die "building the wasm32 std failed (log above)"
    fi
    DEPS="$TMP/target/$WASM_TARGET/release/deps"
    compgen -G "$DEPS/libstd-*.rlib" >/dev/null && compgen -G "$DEPS/libtest-*.rlib" >/dev/null ||
      die "the std build produced no libstd/libtest rlibs"
    "${SUDO[@]}" mkdir -p "$DEB_LIBDIR"
    "${SUDO[@]}" find "$DEB_LIBDIR" -maxdepth 1 -name '*.rlib' -delete   # no stale duplicates
    find "$DEPS" -maxdepth 1 -name '*.rlib' ! -name 'libkw_sysroot_builder-*' \
      -exec "${SUDO[@]}" cp {} "$DEB_LIBDIR/" \;
    printf '%s\n' "$DEB_VV" | "${SUDO[@]}" tee "$STAMP" >/dev/null
    rm -rf "$TMP"; trap - EXIT
    sysroot_ok || die "the installed wasm32 std does not work"
    log "rust: installed $(find "$DEB_LIBDIR" -maxdepth 1 -name '*.rlib' | wc -l) rlibs into $DEB_LIBDIR"
    # wasm32 artefacts built against an older std fail with "can't find crate for wasm_bindgen".
    if [ -d "$ROOT/target/$WASM_TARGET" ]; then
      log "rust: removing target/$WASM_TARGET (built against the previous std)"
      rm -rf "$ROOT/target/$WASM_TARGET"
    fi
  fi
  if ! [ -x /usr/bin/cargo-clippy ]; then warn "no /usr/bin/cargo-clippy (rust-web-clippy): wasm32 clippy unavailable"; fi
  # Re-detect now that the std is there.
  if [ "$KW_WASM_TOOLCHAIN" != debian ]; then
    . "$ROOT/.ci/env.sh"
    [ "$KW_WASM_TOOLCHAIN" = debian ] || die "wasm32 toolchain still not detected (KW_WASM_TOOLCHAIN=$KW_WASM_TOOLCHAIN)"
  fi
fi

# ---------------------------------------------------------------- 2. browser for tests
chrome_ok() { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
              || command -v google-chrome >/dev/null 2>&1; }
driver_ok() { [ -x "$CHROMEDRIVER" ] || command -v chromedriver >/dev/null 2>&1; }
if chrome_ok && driver_ok; then
  log "browser: $(command -v chromium || command -v chromium-browser || command -v google-chrome) + $CHROMEDRIVER"
elif command -v dpkg-query >/dev/null 2>&1 && apt_install "${BROWSER_PKGS[@]}"; then
  log "browser: installed ${BROWSER_PKGS[*]}"
else
  warn "chromium and/or chromedriver missing: browser tests will not run (install chromium + chromedriver; set CHROMEDRIVER and adjust webdriver.json's binary)"
fi

# ---------------------------------------------------------------- 2b. more engines: Firefox ESR, WebKitGTK (issue 10)
# Optional: .ci/wasm-browsers.sh and the engine matrix print SKIP for what is missing.
# Measured here: about 80 s of apt for these, once.
EXTRA_BROWSER_PKGS=(firefox-esr webkit2gtk-driver xvfb)
if command -v dpkg-query >/dev/null 2>&1; then
  if apt_install "${EXTRA_BROWSER_PKGS[@]}"; then log "browser: ${EXTRA_BROWSER_PKGS[*]} present"
  else warn "could not install ${EXTRA_BROWSER_PKGS[*]}: firefox/webkit will be SKIPPED"; fi
fi

# ---------------------------------------------------------------- 3. wasm-bindgen-cli, wasm-pack
# The exact version of the wasm-bindgen crate: Cargo.lock, else an `=X` pin in Cargo.toml,
# else let cargo resolve it (generate-lockfile).
lock_wb_version() {
  [ -f Cargo.lock ] || return 1
  awk '/^\[\[package\]\]/{n=""} /^name = /{n=$3} /^version = /{ if (n=="\"wasm-bindgen\"") { gsub(/"/,"",$3); print $3; exit } }' Cargo.lock
}
toml_wb_version() {
  sed -n -E 's/^[[:space:]]*wasm-bindgen[[:space:]]*=[[:space:]]*(\{[^}]*version[[:space:]]*=[[:space:]]*)?"=([0-9][^"]*)".*/\2/p' Cargo.toml | head -n1
}
WB_VERSION="$(lock_wb_version || true)"
[ -n "$WB_VERSION" ] || WB_VERSION="$(toml_wb_version)"
if [ -z "$WB_VERSION" ]; then
  log "wasm-bindgen: no Cargo.lock and no =X pin; cargo generate-lockfile"
  host_cargo generate-lockfile -q
  WB_VERSION="$(lock_wb_version || true)"
fi
[ -n "$WB_VERSION" ] || die "could not determine the wasm-bindgen crate version"

installed_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$installed_wb" = "$WB_VERSION" ] && command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
  log "wasm-bindgen-cli $WB_VERSION: present"
else
  log "wasm-bindgen-cli: installing $WB_VERSION (was: ${installed_wb:-none}; ~3.5 min)"
  # No --locked: its Cargo.lock names a crate version the registry here does not serve.
  host_cargo install -q --force wasm-bindgen-cli --version "$WB_VERSION"
  hash -r
  [ "$(wasm-bindgen --version | awk '{print $2}')" = "$WB_VERSION" ] || die "wasm-bindgen on PATH is not $WB_VERSION ($(command -v wasm-bindgen))"
fi

if wasm-pack --version >/dev/null 2>&1; then
  log "wasm-pack: present ($(wasm-pack --version))"
else
  log "wasm-pack: installing (~2 min)"
  host_cargo install -q wasm-pack --version 0.15.1  # the version the build was checked with
  hash -r
fi

if [ -n "${GECKODRIVER:-}" ] || command -v geckodriver >/dev/null 2>&1; then
  log "geckodriver: present (${GECKODRIVER:-$(command -v geckodriver)})"
elif command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1; then
  log "geckodriver: installing (~3.5 min; Debian has no package)"
  host_cargo install -q --locked geckodriver --version 0.37.1 || warn "geckodriver install failed: firefox will be SKIPPED"
  hash -r
fi

# ---------------------------------------------------------------- 4. npm devDependencies
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js >= 20"
if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
     || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "npm: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  else
    log "npm: node_modules up to date"
  fi
else
  log "npm: no package-lock.json; npm install"
  npm install --no-audit --no-fund --loglevel=error
fi
[ -x node_modules/.bin/wasm-opt ] || warn "node_modules/.bin/wasm-opt missing (devDependency binaryen)"

# ---------------------------------------------------------------- 5. webdriver.json
[ -f webdriver.json ] || warn "webdriver.json missing at the repo root (headless Chromium flags for wasm-bindgen-test)"

log "done in $((SECONDS - T0)) s (wasm toolchain: $KW_WASM_TOOLCHAIN)"
