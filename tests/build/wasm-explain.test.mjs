// .ci/wasm-explain.mjs (the parser behind `npm run size -- --explain`) on a wasm module
// assembled byte by byte here, so it needs no Rust build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { explainWasm, shortName } from "../../.ci/wasm-explain.mjs";
import { leb } from "../../.ci/wasm-order.mjs";

const str = (s) => {
  const b = [...new TextEncoder().encode(s)];
  return [...leb(b.length), ...b];
};
const vec = (items) => [...leb(items.length), ...items.flat()];
const section = (id, body) => [id, ...leb(body.length), ...body];
const body = (instrs) => {
  const b = [0x00, ...instrs, 0x0b]; // no locals, instructions, end
  return [...leb(b.length), ...b];
};

const NOP = 0x01;
const RUST_NAME = "<klaviyo_wasm[e8fae07a2e992d34]::core::queue::Queue>::push::h0123456789abcdef";

// Imports: one function (index 0) and a memory, which must not shift function indices.
// Defined: function 1 (body 3 bytes), function 2 (body 12 bytes: 10 nops). Data: an active
// segment of 5 bytes and a passive one of 3. Function 2 is exported as "push". Names: module name (skipped), function names,
// data segment names (left out with names = false).
function module(names = true) {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 0x00, 0x00]])), // type 0: () -> ()
    ...section(2, vec([
      [...str("env"), ...str("f"), 0x00, 0x00],          // func, type 0
      [...str("env"), ...str("mem"), 0x02, 0x00, 0x01],  // memory, min 1 page
    ])),
    ...section(3, vec([[0x00], [0x00]])),
    ...section(7, vec([[...str("push"), 0x00, 0x02]])), // export func 2
    ...section(10, vec([body([NOP]), body(Array(10).fill(NOP))])),
    ...section(11, vec([
      [0x00, 0x41, 0x08, 0x0b, ...str("hello")],  // active: i32.const 8, end
      [0x01, ...str("abc")],                      // passive
    ])),
    ...(names ? section(0, [
      ...str("name"),
      ...section(0, str("tiny")),
      ...section(1, vec([[0x00, ...str("imported")], [0x01, ...str("small")], [0x02, ...str(RUST_NAME)]])),
      ...section(9, vec([[0x00, ...str(".rodata")]])),
    ]) : []),
  ];
  return new Uint8Array(bytes);
}

test("the hand-built module is valid wasm", () => {
  assert.ok(WebAssembly.validate(module()));
});

test("functions: names by index past the imports, body sizes", () => {
  const { rows, totals } = explainWasm(module());
  const funcs = rows.filter((r) => r.kind === "func");
  assert.deepEqual(funcs.map((r) => [r.name, r.bytes]), [
    ["small", 3],
    ["<klaviyo_wasm::core::queue::Queue>::push", 12],
  ]);
  assert.equal(funcs[1].raw, RUST_NAME);
  assert.deepEqual(funcs.map((r) => r.export), [undefined, "push"]);
  assert.equal(totals.func, 15);
});

test("data segments: payload sizes, active and passive, names where given", () => {
  const { rows, totals } = explainWasm(module());
  const data = rows.filter((r) => r.kind === "data");
  assert.deepEqual(data.map((r) => [r.name, r.bytes]), [["data[0] .rodata", 5], ["data[1]", 3]]);
  assert.equal(totals.data, 8);
  assert.equal(totals.file, module().length);
});

test("no name section: placeholder names", () => {
  const { rows } = explainWasm(module(false));
  assert.deepEqual(rows.map((r) => r.name), ["func[1]", "func[2]", "data[0]", "data[1]"]);
});

test("shortName: drops crate disambiguators and hashes, shortens long generics", () => {
  assert.equal(shortName("klaviyo_wasm[e8fae07a2e992d34]::core::json::parse::h00112233aabbccdd"), "klaviyo_wasm::core::json::parse");
  const long = "core[e15bb7c783ef935a]::ptr::drop_in_place::<alloc[7abfd1ecb4a90228]::vec::Vec<(alloc[7abfd1ecb4a90228]::string::String, "
    + "alloc[7abfd1ecb4a90228]::collections::btree::map::BTreeMap<alloc[7abfd1ecb4a90228]::string::String, klaviyo_wasm[e8fae07a2e992d34]::core::json::Json>)>>";
  const s = shortName(long);
  assert.ok(s.length <= 100, s);
  assert.ok(s.startsWith("core::ptr::drop_in_place::<alloc::vec::Vec<"), s);
  assert.ok(s.includes("<…>"), s);
  assert.ok(!/\[[0-9a-f]{8,}\]/.test(s), s);
});
