#!/usr/bin/env bash
# .ci/build.sh [web|edge] — build an npm-ready package into dist/<target>/.
#
#   web  (default)  the browser package, cargo feature `browser` (the default feature):
#                   cargo build (release, LTO checked) -> wasm-pack/wasm-bindgen --target web
#                   -> wasm-opt -Oz (npm binaryen) -> dist/web/ = glue + .wasm + .d.ts
#                   + the hand-written wrapper from js/ (index.js, index.d.ts, loader.js->klaviyo.js)
#   edge            not yet (exits 1). Adding it = one more `case` arm calling build_pkg with
#                   its features / wasm-bindgen target / dist dir, plus its own wrapper files.
#
# Needs .ci/setup.sh to have run. Fails cleanly (exit 1, compiler errors shown) if src/ does
# not compile. Env: KW_KEEP_WASM_PACK_OUT=1 keeps target/wasm-pack/<target>/ (always kept now).
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=.ci/env.sh
. "$ROOT/.ci/env.sh"

WASM_TARGET=wasm32-unknown-unknown
OUT_NAME=klaviyo_wasm
# Features the rustc 1.96 wasm32 default CPU ("generic", LLVM 22) emits; wasm-opt rejects a
# module using a feature it was not told about. Keep in sync with the toolchain.
WASM_OPT_FEATURES=(--enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext
  --enable-nontrapping-float-to-int --enable-mutable-globals --enable-multivalue
  --enable-reference-types --enable-call-indirect-overlong)
WASM_OPT_FLAGS=(-Oz --strip-debug --strip-producers "${WASM_OPT_FEATURES[@]}")

log()  { printf '[build] %s\n' "$*"; }
warn() { printf '[build] WARNING: %s\n' "$*" >&2; }
die()  { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

preflight() {
  [ "$KW_WASM_TOOLCHAIN" != none ] || die "no toolchain with a wasm32 std: run 'npm run setup' (bash .ci/setup.sh)"
  command -v wasm-pack >/dev/null 2>&1 || die "wasm-pack not found: run 'npm run setup'"
  command -v wasm-bindgen >/dev/null 2>&1 || die "wasm-bindgen not found: run 'npm run setup'"
  command -v wasm-opt >/dev/null 2>&1 || die "wasm-opt not found (npm devDependency binaryen): run 'npm run setup'"
  [ -f "$ROOT/src/lib.rs" ] || die "src/lib.rs does not exist yet"
}

# cargo build -v of the cdylib, to (1) show compile errors and fail cleanly before wasm-pack,
# (2) check that `-C lto` reaches rustc (Cargo silently drops it for crate-type
# ["cdylib","rlib"]). wasm-pack's own `cargo build` right after is then a no-op ("Fresh").
# A fresh crate prints no rustc line, so the verdict is cached with the build.
cargo_build_checked() { # cargo_build_checked NAME CARGO_ARGS...
  local name=$1; shift
  local logf="$ROOT/target/wasm-pack/$name.cargo.log" verdict="$ROOT/target/wasm-pack/$name.lto"
  mkdir -p "$ROOT/target/wasm-pack"
  log "cargo build --release --target $WASM_TARGET $* (toolchain: $KW_WASM_TOOLCHAIN)"
  if ! wasm_cargo build -v --lib --release --target "$WASM_TARGET" "$@" >"$logf" 2>&1; then
    grep -v -E '^[[:space:]]+(Running|Fresh|Dirty|Compiling|Downloaded?|Locking|Adding) ' "$logf" | tail -n 80 >&2
    die "cargo build failed (full log: ${logf#"$ROOT"/})"
  fi
  local line
  line="$(grep -E 'Running `.*--crate-type cdylib' "$logf" | tail -n1 || true)"
  if [ -n "$line" ]; then
    if grep -qE -- '-C lto( |=|`|$)' <<<"$line"; then echo yes >"$verdict"; else echo no >"$verdict"; fi
  fi
  case "$(cat "$verdict" 2>/dev/null || echo unknown)" in
    yes) log "LTO: -C lto reaches rustc" ;;
    no)  warn "LTO is OFF: no '-C lto' on the cdylib's rustc line (crate-type must be [\"cdylib\"] only; see $logf)" ;;
    *)   warn "LTO: could not verify (crate was fresh and never checked; 'cargo clean' to re-check)" ;;
  esac
}

# build_pkg NAME WB_TARGET DIST_DIR [CARGO_FEATURE_ARGS...] — sets STAGE (DIST_DIR.tmp)
build_pkg() {
  local name=$1 wb_target=$2 dist=$3; shift 3
  local out="$ROOT/target/wasm-pack/$name" stage="$dist.tmp"

  cargo_build_checked "$name" "$@"

  log "wasm-pack build --target $wb_target (wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'))"
  rm -rf "$out"
  # --mode no-install: use the wasm-bindgen on PATH, never download one.
  # --no-pack: no package.json/README in $out (the repo's package.json is the package).
  # wasm-opt is off in Cargo.toml ([package.metadata.wasm-pack.profile.release]); run below.
  if ! wasm_run wasm-pack --log-level warn build "$ROOT" --release --mode no-install --no-pack \
        --target "$wb_target" --out-dir "$out" --out-name "$OUT_NAME" -- "$@"; then
    die "wasm-pack build failed"
  fi
  [ -f "$out/${OUT_NAME}_bg.wasm" ] || die "wasm-pack produced no $out/${OUT_NAME}_bg.wasm"

  rm -rf "$stage"; mkdir -p "$stage"
  log "wasm-opt ${WASM_OPT_FLAGS[*]}"
  if ! wasm-opt "${WASM_OPT_FLAGS[@]}" "$out/${OUT_NAME}_bg.wasm" -o "$stage/${OUT_NAME}_bg.wasm"; then
    die "wasm-opt failed (a wasm feature missing from WASM_OPT_FEATURES in .ci/build.sh?)"
  fi

  local f
  for f in "$OUT_NAME.js" "$OUT_NAME.d.ts" "${OUT_NAME}_bg.wasm.d.ts"; do
    if [ -f "$out/$f" ]; then cp "$out/$f" "$stage/"; fi
  done
  if [ -d "$out/snippets" ]; then cp -R "$out/snippets" "$stage/"; fi
  STAGE="$stage"
}

# copy_wrapper STAGE SRC DEST [required]
copy_wrapper() {
  if [ -f "$ROOT/$2" ]; then cp "$ROOT/$2" "$1/$3"
  elif [ "${4:-}" = required ]; then warn "$2 missing: dist has no $3 (package.json points at it)"
  fi
}

publish_stage() { # publish_stage STAGE DIST — swap in atomically-ish, list the result
  rm -rf "$2"; mv "$1" "$2"
  log "${2#"$ROOT"/}/:"
  (cd "$2" && find . -type f | sort | while read -r f; do printf '  %8d  %s\n' "$(wc -c <"$f")" "${f#./}"; done)
}

kind="${1:-web}"
case "$kind" in
  web|browser)
    preflight
    dist="$ROOT/dist/web"
    build_pkg web web "$dist"          # default features = browser
    copy_wrapper "$STAGE" js/index.js index.js required
    copy_wrapper "$STAGE" js/index.d.ts index.d.ts required
    copy_wrapper "$STAGE" js/loader.js klaviyo.js
    publish_stage "$STAGE" "$dist"
    ;;
  edge)
    echo 'edge build: not yet' >&2
    exit 1
    # later, e.g.:
    # preflight; build_pkg edge web "$ROOT/dist/edge" --no-default-features --features edge
    # copy_wrapper "$STAGE" js/edge.js index.js required; publish_stage "$STAGE" "$ROOT/dist/edge"
    ;;
  *) echo "usage: $0 [web|edge]" >&2; exit 2 ;;
esac
