// .ci/wasm-order.mjs (the build's step that orders the browser .wasm's functions for gzip):
// an order changes no behaviour. The built .wasm (dist/web) is driven through its exports
// as js/runtime.js drives it, once as built and once with its functions in reverse order,
// and every answer must be the same bytes; an instruction the reader does not know must
// stop it rather than be copied blindly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { readModule, reorderer, searchOrder, leb } from "../../.ci/wasm-order.mjs";

const WASM = fileURLToPath(new URL("../../dist/web/klaviyo_wasm_bg.wasm", import.meta.url));
const ORDER = fileURLToPath(new URL("../../.ci/wasm-order.mjs", import.meta.url));
const built = existsSync(WASM) ? new Uint8Array(readFileSync(WASM)) : null;
const skip = built ? false : "dist/web is not built (bash .ci/build.sh)";

// The core's codes (js/runtime.js, src/browser/exports.rs).
const TRACK = 2, IDENTIFY = 1, NEXT = 3, SYNC = 1, REPORTS = 13;

/** The exports driven through one tracker's life; every answer, in order. */
function drive(bytes) {
  const w = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
  const enc = new TextEncoder(), dec = new TextDecoder();
  const put = (...texts) => {
    const all = texts.map((t) => enc.encode(t));
    const ptr = w.input_buffer(all.reduce((n, b) => n + b.length, 0) + 1);
    let at = ptr;
    for (const b of all) { new Uint8Array(w.memory.buffer, at, b.length).set(b); at += b.length; }
    return all.map((b) => b.length);
  };
  const answer = (len) => dec.decode(new Uint8Array(w.memory.buffer, w.answer_ptr(), len));
  const seen = [];
  const now = 1_767_225_600_000;
  const h = w.open(...put('{"companyId":"AbC123"}', "", "?utm_source=x", "fresh-id", "__kla_id=junk"), now);
  seen.push(`open ${h}`);
  const call = (op, args) => {
    const n = w.call(h, op, ...put(JSON.stringify(["id-" + seen.length, now, ...args])));
    seen.push(`call ${op}: ${n ? answer(n) : "ok"}`);
  };
  call(IDENTIFY, [{ email: "someone@example.com", first_name: "Ada" }]);
  call(TRACK, ["Viewed Page", { url: "https://shop.example/a", price: 12.5 }, { value: 19.99, valueCurrency: "EUR" }]);
  call(TRACK, [5, {}]); // refused: the metric must be a string
  call(IDENTIFY, [{ unknown_key: 1 }]); // refused: not a profile attribute
  for (const what of [SYNC, NEXT, NEXT, REPORTS]) {
    seen.push(`control ${what}: ${answer(w.control(h, what, now, ...put("", "")))}`);
  }
  return seen;
}

test("the reorderer writes the same bytes for the order it was given", { skip }, () => {
  const { bodies, write } = reorderer(built);
  const same = write(bodies.map((_, k) => k));
  assert.deepEqual(Buffer.from(same), Buffer.from(built));
});

test("the built .wasm with its functions in reverse order validates and answers the same, byte for byte", { skip }, () => {
  const { bodies, write } = reorderer(built);
  const reversed = write(bodies.map((_, k) => bodies.length - 1 - k));
  assert.ok(WebAssembly.validate(reversed));
  assert.notDeepEqual(Buffer.from(reversed), Buffer.from(built));
  const before = drive(built), after = drive(reversed);
  assert.ok(before.some((line) => line.includes("must be a string")), before.join("\n"));
  assert.ok(before.some((line) => line.includes("/client/events")), before.join("\n"));
  assert.deepEqual(after, before);
});

test("the search is deterministic, and the step never leaves a bigger file", { skip }, () => {
  assert.deepEqual(searchOrder(reorderer(built), 300), searchOrder(reorderer(built), 300));
  // The built file is ordered already: a short search from its own first order does
  // worse, and the step must then keep the file as it was.
  const dir = mkdtempSync(join(tmpdir(), "wasm-order-"));
  try {
    const copy = join(dir, "k.wasm");
    writeFileSync(copy, built);
    const run = spawnSync(process.execPath, [ORDER, copy, "--evals", "300"], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const gz = (x) => gzipSync(x, { level: 9 }).length;
    const after = readFileSync(copy);
    assert.ok(WebAssembly.validate(after));
    assert.ok(gz(after) <= gz(built), `${gz(after)} > ${gz(built)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an instruction the reader does not know stops it (a SIMD v128.const)", () => {
  const section = (id, body) => [id, ...leb(body.length), ...body];
  const code = [0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x1a, 0x0b];
  const bytes = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 0, 0]),
    ...section(3, [1, 0]),
    ...section(10, [1, ...leb(code.length), ...code]),
  ]);
  assert.throws(() => reorderer(bytes), /unknown instruction 0xfd/);
});

test("a table offset whose number is the byte of `end` (i32.const 11) is read whole", () => {
  const section = (id, body) => [id, ...leb(body.length), ...body];
  const code = [0x00, 0x0b];
  const bytes = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 0, 0]),
    ...section(3, [2, 0, 0]),
    ...section(4, [1, 0x70, 0x00, 12]), // a funcref table of 12
    ...section(9, [1, 0x00, 0x41, 11, 0x0b, 2, 0, 1]), // at 11: functions 0 and 1
    ...section(10, [2, ...leb(code.length), ...code, ...leb(code.length), ...code]),
  ]);
  assert.ok(WebAssembly.validate(bytes));
  const swapped = reorderer(bytes).write([1, 0]);
  assert.ok(WebAssembly.validate(swapped));
  const elem = readModule(swapped).sections.find((sec) => sec.id === 9);
  assert.deepEqual([...elem.bytes], [1, 0x00, 0x41, 11, 0x0b, 2, 1, 0]); // the two, renumbered
});
