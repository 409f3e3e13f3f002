// The JS/wasm seam: codes that cross it are defined once in Rust, and the JS that names
// them must agree. Read from the sources, so a code added on one side and forgotten on
// the other fails here, not silently in a page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (f) => readFileSync(path.join(ROOT, f), "utf8");

/** `const A = 1, B = 2, ...;` blocks of a JS file: every NAME = number, in order. */
function jsConstants(text, firstName) {
  const at = text.indexOf(`const ${firstName} = `);
  assert.ok(at >= 0, `no const ${firstName}`);
  const block = text.slice(at + 6, text.indexOf(";", at));
  return new Map([...block.matchAll(/([A-Z_]+) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
}

/** `pub const NAME: u32 = N;` inside `mod what { ... }`. */
function rustWhat(text) {
  const at = text.indexOf("mod what {");
  assert.ok(at >= 0, "no mod what");
  const block = text.slice(at, text.indexOf("}", at));
  return new Map([...block.matchAll(/pub const ([A-Z_]+): u32 = (\d+);/g)].map((m) => [m[1], Number(m[2])]));
}

/** `pub enum Op { Identify = 1, Track, ... }`: variant names in SCREAMING_SNAKE_CASE. */
function rustOps(text) {
  const at = text.indexOf("pub enum Op {");
  assert.ok(at >= 0, "no enum Op");
  const body = text.slice(at + "pub enum Op {".length, text.indexOf("}", at))
    .split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("//"));
  const ops = new Map();
  let next = 0;
  for (const line of body) {
    const m = /^([A-Za-z]+)(?:\s*=\s*(\d+))?,?$/.exec(line);
    assert.ok(m, `unreadable variant: ${line}`);
    const code = m[2] === undefined ? next : Number(m[2]);
    ops.set(m[1].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase(), code);
    next = code + 1;
  }
  return ops;
}

test("the control() codes of js/runtime.js are src/browser/exports.rs's, name for name", () => {
  const rust = rustWhat(read("src/browser/exports.rs"));
  const js = jsConstants(read("js/runtime.js"), "SYNC");
  assert.ok(rust.size >= 20, `${rust.size} codes`);
  assert.deepEqual(Object.fromEntries(js), Object.fromEntries(rust));
  assert.equal(new Set(rust.values()).size, rust.size, "no code twice");
});

test("the Op codes of js/index.js are src/core/client/mod.rs's, name for name", () => {
  const rust = rustOps(read("src/core/client/mod.rs"));
  const js = jsConstants(read("js/index.js"), "IDENTIFY");
  // Not an Op: the loading window's own marker of a reset(), which no Op code may take.
  assert.equal(js.get("EARLY_RESET"), 0);
  js.delete("EARLY_RESET");
  assert.ok(![...rust.values()].includes(0));
  assert.ok(rust.size >= 11, `${rust.size} ops`);
  assert.deepEqual(Object.fromEntries(js), Object.fromEntries(rust));
});

test("the parsers see a changed code", () => {
  const text = read("src/core/client/mod.rs").replace("Identify = 1,", "Identify = 1,\n    Renamed,");
  assert.equal(rustOps(text).get("RENAMED"), 2);
  assert.notDeepEqual(Object.fromEntries(rustOps(text)), Object.fromEntries(rustOps(read("src/core/client/mod.rs"))));
});

test("a loading page saves its window again well within the time after which the sender adopts it", () => {
  const stale = /pub const EARLY_STALE_MS: u64 = ([\d_]+);/.exec(read("src/core/client/mod.rs"));
  const alive = /const ALIVE_MS = ([\d_]+);/.exec(read("js/index.js"));
  assert.ok(stale && alive, "EARLY_STALE_MS and ALIVE_MS found");
  const [s, a] = [stale[1], alive[1]].map((n) => Number(n.replaceAll("_", "")));
  // Two saves may be missed (a busy or throttled page) before the record looks abandoned.
  assert.ok(a * 3 <= s, `ALIVE_MS ${a} × 3 <= EARLY_STALE_MS ${s}`);
});
