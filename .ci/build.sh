#!/usr/bin/env bash
# .ci/build.sh [web|script|edge] — build an npm-ready package into dist/<target>/.
#
#   web  (default)  the browser package, cargo feature `browser` (the default feature):
#                   cargo build (release, LTO checked) -> wasm-pack/wasm-bindgen --target web
#                   -> wasm-opt -O3 (npm binaryen) -> dist/web/ = glue + .wasm + .d.ts
#                   + the hand-written wrapper from js/ (index.js, index.d.ts);
#                   and dist/script/ from the same build (below).
#   script          only dist/script/, the script-tag install: klaviyo-wasm.js (ONE classic
#                   script: js/script/main.js + js/index.js + js/runtime.js + the glue as a
#                   minified IIFE), the same klaviyo_wasm_bg.wasm as dist/web, and
#                   snippet.min.js (js/script/snippet.js minified, the paste-in snippet).
#   edge            the worker, cargo feature `edge` only -> dist/edge/ (glue as .mjs and
#                   the worker entry from js/edge/); std as shipped.
#
# Needs .ci/setup.sh to have run. Fails cleanly (exit 1, compiler errors shown, previous dist/
# left untouched) if src/ does not compile. Intermediate files: target/wasm-pack/<target>/
# (raw wasm-pack output), target/wasm-pack/<target>.cargo.log (the cargo build -v log),
# target/wasm-pack/<target>.wasm-opt-flags (the wasm-opt flags used, one a line: read by
# `node .ci/size.mjs --explain` to redo the same optimisation with names kept).
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=.ci/env.sh
. "$ROOT/.ci/env.sh"

WASM_TARGET=wasm32-unknown-unknown
OUT_NAME=klaviyo_wasm
# wasm-opt rejects a module that uses a wasm feature it was not told about, and rustc's
# wasm32 output may use any feature of its target CPU (rustc 1.96 / LLVM 22 "generic":
# bulk-memory multivalue mutable-globals nontrapping-fptoint reference-types sign-ext).
# So enable exactly the features rustc enables (asked from the toolchain, fixed list as
# fallback): always validates, and lets wasm-opt use nothing the browser-side rustc output
# does not already require. (binaryen's default set is only sign-ext + mutable-globals;
# memory.copy from bulk-memory fails validation then.)
wasm_opt_features() {
  local feats
  # shellcheck disable=SC2086 # RUSTFLAGS may carry -C target-feature=...
  feats="$(wasm_run rustc ${RUSTFLAGS:-} --print cfg --target "$WASM_TARGET" 2>/dev/null |
           sed -n 's/^target_feature="\(.*\)"$/\1/p')" || feats=""
  [ -n "$feats" ] || feats="bulk-memory multivalue mutable-globals nontrapping-fptoint reference-types sign-ext"
  local f
  for f in $feats; do
    case "$f" in
      nontrapping-fptoint) echo --enable-nontrapping-float-to-int ;;
      *) echo "--enable-$f" ;;
    esac
  done
}

log()  { printf '[build] %s\n' "$*"; }
warn() { printf '[build] WARNING: %s\n' "$*" >&2; }
die()  { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

preflight() {
  [ "$KW_WASM_TOOLCHAIN" != none ] || die "no toolchain with a wasm32 std: run 'npm run setup' (bash .ci/setup.sh)"
  command -v wasm-pack >/dev/null 2>&1 || die "wasm-pack not found: run 'npm run setup'"
  command -v wasm-bindgen >/dev/null 2>&1 || die "wasm-bindgen not found: run 'npm run setup'"
  command -v wasm-opt >/dev/null 2>&1 || die "wasm-opt not found (npm devDependency binaryen): run 'npm run setup'"
}

# cargo build -v of the cdylib, to (1) show compile errors and fail cleanly before wasm-pack,
# (2) check that `-C lto` reaches rustc (Cargo silently drops it for crate-type
# ["cdylib","rlib"]). wasm-pack's own `cargo build` right after is then a no-op ("Fresh").
# A fresh crate prints no rustc line, so the verdict is cached with the build.
# Size build for the browser package: std rebuilt from source with panics that abort at
# once (no panic message formatting, no file paths, no Debug impls in the wasm): about
# 15 KB less wasm. Needs the wasm toolchain's std source (Debian's rust-web-src, or
# rustup's rust-src component) and RUSTC_BOOTSTRAP for the -Z flags; without the source
# we build the ordinary way and print a warning. Its own target dir keeps these flags
# from invalidating the test builds.
size_build_env() {
  local sysroot
  sysroot="$(wasm_run rustc --print sysroot 2>/dev/null || true)"
  if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/src/rust/library/std" ]; then
    export RUSTC_BOOTSTRAP=1
    export RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Ctarget-feature=-reference-types,-multivalue"
    export CARGO_TARGET_DIR="$ROOT/target/size"
    SIZE_ARGS=(-Zbuild-std=std,panic_abort)
    log "size build: std from source, panic=immediate-abort"
  else
    SIZE_ARGS=()
    warn "no std source for the wasm toolchain: building without the size flags (larger wasm)"
  fi
}

cargo_build_checked() { # cargo_build_checked NAME CARGO_ARGS...
  local name=$1; shift
  local logf="$ROOT/target/wasm-pack/$name.cargo.log" verdict="$ROOT/target/wasm-pack/$name.lto"
  mkdir -p "$ROOT/target/wasm-pack"
  log "cargo build --release --target $WASM_TARGET $* (toolchain: $KW_WASM_TOOLCHAIN)"
  if ! wasm_cargo build -v --lib --release --target "$WASM_TARGET" "$@" >"$logf" 2>&1; then
    grep -v -E '^[[:space:]]+(Running|Fresh|Dirty|Compiling|Downloaded?|Locking|Adding) |process didn.t exit successfully' "$logf" | tail -n 80 >&2
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
  local opt_flags
  # The browser build: -O3 with --converge and --low-memory-unused comes out 300 B
  # smaller gzipped than -Oz (and faster): -Oz's smaller raw file compresses worse. Rust's
  # stack grows down from 1 MiB, so the low 1 KiB is never used but by a stack overflow.
  # wasm-bindgen's runtime exports two globals (__instance_terminated, __abort_handler)
  # that our runtime never reads (it calls the exports itself): dropped, 70 B gzipped.
  local level
  if [ -n "${WASM_OPT_LEVEL:-}" ]; then
    read -r -a level <<<"$WASM_OPT_LEVEL" # several flags; read does not glob
  else
    level=(--remove-exports='__*' -O3 --converge --low-memory-unused)
  fi
  opt_flags=("${level[@]}" --strip-debug --strip-producers --strip-target-features $(wasm_opt_features))
  log "wasm-opt ${opt_flags[*]}"
  if ! wasm-opt "${opt_flags[@]}" "$out/${OUT_NAME}_bg.wasm" -o "$stage/${OUT_NAME}_bg.wasm"; then
    die "wasm-opt failed (see wasm_opt_features in .ci/build.sh)"
  fi
  printf '%s\n' "${opt_flags[@]}" >"$ROOT/target/wasm-pack/$name.wasm-opt-flags"
  # The browser .wasm's functions in the order gzip packs smallest (about 0.2 KB; a fixed
  # search, about 20 s; .ci/wasm-order.mjs says why). Where it cannot, the file stays as is.
  if [ "$name" = web ]; then
    node "$ROOT/.ci/wasm-order.mjs" "$stage/${OUT_NAME}_bg.wasm"
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

# minify_js STAGE: every .js in the package through terser (npm devDependency): the
# wasm-bindgen glue is verbose, and script-tag users get our files as they are. Not
# index.js and inline.js, minified as they are bundled (terser would escape the bytes).
# Roughly 8 KB -> 5 KB gzipped.
minify_js() {
  local f
  while IFS= read -r f; do
    if ! node "$ROOT/node_modules/terser/bin/terser" "$f" --module --ecma 2020 \
          --compress passes=2 --mangle -o "$f.min"; then
      die "terser failed on ${f#"$ROOT"/}"
    fi
    mv "$f.min" "$f"
  done < <(find "$1" -name '*.js' -type f ! -name index.js ! -name inline.js)
}

# terser_again FILE COMPRESS [--module]: terser over esbuild's minified bundle finds what esbuild leaves
# (joined declarations and conditions, a second pass): the npm page's index.js 4494 ->
# 4338 B gzipped. Names stay: terser mangles locals, never properties.
terser_again() {
  local f=$1 compress=$2; shift 2
  if ! node "$ROOT/node_modules/terser/bin/terser" "$f" "$@" --ecma 2020 \
        --compress "$compress" --mangle -o "$f.min"; then
    die "terser failed on ${f#"$ROOT"/}"
  fi
  mv "$f.min" "$f"
}

# The --mangle-props regex from .ci/mangled-props.txt: names only our own files use
# (tests/build/mangle.test.mjs keeps it that way), renamed to a letter or two: 30 B gzip.
mangle_props() {
  local names
  names="$(grep -v -E '^[[:space:]]*(#|$)' "$ROOT/.ci/mangled-props.txt" | paste -sd'|')"
  [ -n "$names" ] && printf -- '--mangle-props=^(%s)$' "$names"
}

# esbuild_esm ENTRY OUT: one minified ES module from ENTRY and what it imports.
# es2022: private fields stay native (lowering them would cost bytes and speed).
esbuild_esm() {
  if ! "$ROOT/node_modules/.bin/esbuild" "$1" --bundle --format=esm \
        --minify --target=es2022 --legal-comments=none --log-level=warning "$(mangle_props)" \
        --outfile="$2"; then
    die "esbuild failed to bundle ${2#"$ROOT"/}"
  fi
}

# bundle_web STAGE: js/index.js + js/runtime.js + the wasm-bindgen glue -> one minified
# ES module, index.js, so a page loads two files from us (it and the .wasm) and a
# bundler sees one module. The glue's unused parts (its own fetch/instantiate) go.
bundle_web() {
  local stage=$1 src="$1/src"
  mkdir -p "$src"
  mv "$stage/$OUT_NAME.js" "$src/"
  cp "$ROOT/js/index.js" "$ROOT/js/runtime.js" "$ROOT/js/wasm-source.js" "$src/"
  esbuild_esm "$src/index.js" "$stage/index.js"
  terser_again "$stage/index.js" passes=2 --module
  # inline.js (`klaviyo-wasm/inline`): the same modules with the .wasm's bytes inside,
  # one file and no second request (js/wasm-source-inline.js in wasm-source.js's place).
  cp "$ROOT/js/wasm-source.js" "$src/wasm-fetch.js"
  cp "$ROOT/js/wasm-source-inline.js" "$src/wasm-source.js"
  esbuild_esm "$src/index.js" "$stage/inline.js"
  # evaluate=false: terser would read the placeholder's length as the bytes' length.
  terser_again "$stage/inline.js" passes=2,evaluate=false --module
  node "$ROOT/.ci/inline-wasm.mjs" "$stage/inline.js" "$stage/${OUT_NAME}_bg.wasm" || die "the inline build failed: its bytes not written (see above)"
  rm -rf "$src" "$stage/$OUT_NAME.d.ts" "$stage/${OUT_NAME}_bg.wasm.d.ts"
}

# bundle_script WEB_STAGE: dist/script/ from a web build's stage (its glue and optimised
# .wasm, read before bundle_web takes the glue): the script-tag install, two files a page
# loads (klaviyo-wasm.js, klaviyo_wasm_bg.wasm), and the snippet. docs/script-tag.md.
bundle_script() {
  local from=$1 stage="$ROOT/dist/script.tmp" src="$ROOT/dist/script.tmp/src"
  rm -rf "$stage"; mkdir -p "$src/script"
  cp "$from/$OUT_NAME.js" "$ROOT/js/index.js" "$ROOT/js/runtime.js" "$ROOT/js/wasm-source.js" "$src/"
  cp "$ROOT"/js/script/*.js "$src/script/"
  cp "$from/${OUT_NAME}_bg.wasm" "$stage/"
  # A classic script, strict like the modules it is made of. import.meta is empty in an
  # IIFE, so the .wasm URL always comes from the script element (js/script/main.js passes
  # wasmUrl); esbuild's note about it is moot.
  if ! "$ROOT/node_modules/.bin/esbuild" "$src/script/main.js" --bundle --format=iife \
        --minify --target=es2022 --legal-comments=none --log-level=warning "$(mangle_props)" \
        --banner:js='"use strict";' --log-override:empty-import-meta=silent \
        --outfile="$stage/klaviyo-wasm.js"; then
    die "esbuild failed to bundle js/script/main.js"
  fi
  terser_again "$stage/klaviyo-wasm.js" passes=2
  if ! node "$ROOT/node_modules/terser/bin/terser" "$ROOT/js/script/snippet.js" --ecma 5 \
        --compress passes=2 --mangle -o "$stage/snippet.min.js"; then
    die "terser failed on js/script/snippet.js"
  fi
  rm -rf "$src"
  publish_stage "$stage" "$ROOT/dist/script"
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
    size_build_env
    build_pkg web web "$dist" "${SIZE_ARGS[@]}"   # default features = browser
    bundle_script "$STAGE"
    bundle_web "$STAGE"
    copy_wrapper "$STAGE" js/index.d.ts index.d.ts required
    minify_js "$STAGE"
    publish_stage "$STAGE" "$dist"
    ;;
  script)
    preflight
    size_build_env
    build_pkg web web "$ROOT/target/wasm-pack/script-stage" "${SIZE_ARGS[@]}"   # as for web
    bundle_script "$STAGE"
    rm -rf "$STAGE"
    ;;
  edge)
    # The worker: the `edge` feature only (no browser code), with std as shipped (size
    # matters less at the edge than debuggable panics).
    preflight
    dist="$ROOT/dist/edge"
    OUT_NAME=klaviyo_edge
    # Built for speed, not bytes: every request runs this code, and workers are priced in CPU.
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=3
    # A function with one caller stays its own above 500 expressions (wasm-opt inlines
    # every such function by default): the routes other than /client are kept out of line
    # in Rust (src/edge/router/mod.rs), and a fresh isolate then compiles and tiers up only
    # what /client runs instead of one function holding every route.
    WASM_OPT_LEVEL="-O3 --one-caller-inline-max-function-size 500"
    build_pkg edge web "$dist" --no-default-features --features edge
    # .mjs: workerd and miniflare read plain .js as CommonJS.
    mv "$STAGE/klaviyo_edge.js" "$STAGE/klaviyo_edge.mjs"
    node "$ROOT/.ci/glue-direct-catch.mjs" "$STAGE/klaviyo_edge.mjs"
    mv "$STAGE/klaviyo_edge.d.ts" "$STAGE/klaviyo_edge.d.mts"
    copy_wrapper "$STAGE" js/edge/worker.mjs worker.mjs required
    # The script-tag files the worker serves first-party (src/edge/script.rs), as
    # modules workerd and wrangler load by extension: .txt as text, .bin as bytes.
    if [ ! -f "$ROOT/dist/script/klaviyo-wasm.js" ]; then
      log "dist/script is missing: building it first (the worker serves it)"
      (unset CARGO_PROFILE_RELEASE_OPT_LEVEL WASM_OPT_LEVEL; bash "$0" script) || die "the script build failed"
    fi
    mkdir -p "$STAGE/script"
    cp "$ROOT/dist/script/klaviyo-wasm.js" "$STAGE/script/klaviyo-wasm.js.txt"
    cp "$ROOT/dist/script/klaviyo_wasm_bg.wasm" "$STAGE/script/klaviyo_wasm_bg.wasm.bin"
    cp "$ROOT/dist/script/snippet.min.js" "$STAGE/script/snippet.min.js.txt"
    publish_stage "$STAGE" "$dist"
    ;;
  *) echo "usage: $0 [web|script|edge]" >&2; exit 2 ;;
esac
