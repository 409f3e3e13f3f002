// .ci/glue-direct-catch.mjs (an edge build step): the rewritten catching imports behave
// exactly like wasm-bindgen's handleError wrappers, and every one in the shipped glue is
// rewritten (or the glue is left as it was).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { directCatch } from "../../.ci/glue-direct-catch.mjs";

const GLUE = `function handleError(f, args) {
    try {
        return f.apply(this, args);
    } catch (e) {
        const idx = addToExternrefTable0(e);
        wasm.__wbindgen_exn_store(idx);
    }
}
const imports = {
        __wbg_get_1: function() { return handleError(function (arg0, arg1) {
            const ret = Reflect.get(arg0, arg1);
            return ret;
        }, arguments); },
        __wbg_plain: function(arg0) {
            return arg0.done;
        },
};`;

function load(src) {
  const stored = [];
  const table = [];
  const wasm = { __wbindgen_exn_store: (i) => stored.push(table[i]) };
  const addToExternrefTable0 = (v) => table.push(v) - 1;
  const imports = new Function('wasm', 'addToExternrefTable0', `${src}; return imports;`)(wasm, addToExternrefTable0);
  return { imports, stored };
}

test('a catching import is called with its own arity and still stores what it throws', () => {
  const { out, count, left } = directCatch(GLUE);
  assert.equal(count, 1);
  assert.equal(left, 0);
  const before = load(GLUE);
  const after = load(out);
  assert.equal(after.imports.__wbg_get_1.length, 2, 'arity matches the wasm call');
  assert.equal(after.imports.__wbg_get_1({ a: 7 }, 'a'), before.imports.__wbg_get_1({ a: 7 }, 'a'));
  const boom = new Error('boom');
  const throwing = new Proxy({}, { get() { throw boom; } });
  assert.equal(after.imports.__wbg_get_1(throwing, 'x'), undefined);
  assert.equal(before.imports.__wbg_get_1(throwing, 'x'), undefined);
  assert.deepEqual(after.stored, [boom]);
  assert.deepEqual(before.stored, [boom]);
  assert.equal(after.imports.__wbg_plain({ done: true }), true, 'other imports untouched');
});

test('the built edge glue has no import left behind handleError', { skip: !existsSync('dist/edge/klaviyo_edge.mjs') && 'dist/edge not built' }, () => {
  const glue = readFileSync('dist/edge/klaviyo_edge.mjs', 'utf8');
  assert.equal(directCatch(glue).left, 0);
  assert.doesNotMatch(glue, /return handleError\(/);
});
