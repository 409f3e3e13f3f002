#!/usr/bin/env node
// .ci/wasm-order.mjs WASM [--evals N] — puts the functions of a wasm module in the order
// that gzip packs smallest, in place. Run by .ci/build.sh on the browser .wasm after
// wasm-opt.
//
// Why: gzip finds repeats only within its last 32 KB, and our code section is about 46 KB,
// so where a function sits decides which of its look-alikes gzip can refer back to.
// wasm-opt orders functions for other ends (its own passes, call counts). A chain of
// look-alikes, then a search that moves runs of functions and keeps each move that packs
// smaller, took about 240 B off the gzipped .wasm (also smaller at gzip -6 and with
// brotli, by less). Nothing runs differently: only function indices change, rewritten
// wherever the module names one (calls, exports, the start function, the table's elements).
//
// The search is deterministic (a fixed seed and a fixed number of moves, --evals, 12,000
// by default), so a build gives the same bytes wherever Node's zlib is the same. It scores
// each order by the module written in it, gzipped. The module kept is then checked: it
// must validate, keep every export, and pack smaller than the input, or the input is left
// as it was (exit 0 with a warning: a bigger .wasm, never a broken one). An instruction
// this reader does not know leaves the input as it was too.
import { readFileSync, writeFileSync } from 'node:fs';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { Reader } from './wasm-explain.mjs';

const SEC = { type: 1, import: 2, func: 3, export: 7, start: 8, elem: 9, code: 10 };

export function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/** The module's sections, with the defined functions' type indices and bodies. */
export function readModule(bytes) {
  const r = new Reader(bytes, 8);
  const sections = [];
  let funcTypes = null, bodies = null;
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.uleb();
    const start = r.pos;
    r.skip(size);
    const sec = { id, bytes: bytes.subarray(start, start + size) };
    sections.push(sec);
    const s = new Reader(bytes, start, start + size);
    if (id === SEC.import) {
      throw new Error('imports shift function indices; this module is expected to import nothing');
    } else if (id === 0 && s.name() === 'name') {
      throw new Error('a name section would need renumbering too; run after --strip-debug');
    } else if (id === SEC.func) {
      funcTypes = [];
      for (let n = s.uleb(); n > 0; n--) funcTypes.push(s.uleb());
    } else if (id === SEC.code) {
      bodies = [];
      for (let n = s.uleb(); n > 0; n--) {
        const len = s.uleb();
        bodies.push(bytes.subarray(s.pos, s.pos + len));
        s.skip(len);
      }
    }
  }
  if (!funcTypes || !bodies || funcTypes.length !== bodies.length) throw new Error('no code section, or one that does not match the function section');
  return { sections, funcTypes, bodies };
}

// One body cut at each function index it names (`call`, `ref.func`): the pieces between
// them and the indices, so a new numbering is a matter of joining. Knows the
// instructions of the features the browser build enables (MVP, sign-ext, non-trapping
// conversions, bulk memory) and throws on any other.
function splitBody(body) {
  const r = new Reader(body);
  const pieces = [], callees = [];
  const u32 = () => r.uleb();
  const skipBlockType = () => {
    const t = body[r.pos];
    if (t === 0x40 || (t >= 0x6f && t <= 0x7f)) r.byte();
    else r.skipLeb(); // a type index (s33)
  };
  let from = 0;
  for (let n = r.uleb(); n > 0; n--) { r.uleb(); r.byte(); } // locals: count, type
  while (r.pos < r.end) {
    const op = r.byte();
    if (op === 0x10 || op === 0xd2) {
      pieces.push(body.subarray(from, r.pos));
      callees.push(r.uleb());
      from = r.pos;
      continue;
    }
    if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b || op === 0xd1) continue;
    if (op >= 0x02 && op <= 0x04) skipBlockType();
    else if (op === 0x0c || op === 0x0d || (op >= 0x20 && op <= 0x26) || op === 0x3f || op === 0x40) u32();
    else if (op === 0x0e) { for (let k = u32(); k > 0; k--) u32(); u32(); }
    else if (op === 0x11) { u32(); u32(); }
    else if (op === 0x1c) { for (let k = u32(); k > 0; k--) r.byte(); }
    else if (op >= 0x28 && op <= 0x3e) { u32(); u32(); }
    else if (op === 0x41 || op === 0x42) r.skipLeb();
    else if (op === 0x43) r.skip(4);
    else if (op === 0x44) r.skip(8);
    else if (op >= 0x45 && op <= 0xc4) { /* numeric, no immediate */ }
    else if (op === 0xd0) r.byte();
    else if (op === 0xfc) {
      const sub = u32();
      if (sub <= 7) { /* saturating truncations */ }
      else if (sub === 8) { u32(); r.byte(); }
      else if (sub === 9 || sub === 13 || (sub >= 15 && sub <= 17)) u32();
      else if (sub === 10) { r.byte(); r.byte(); }
      else if (sub === 11) r.byte();
      else if (sub === 12 || sub === 14) { u32(); u32(); }
      else throw new Error(`unknown instruction 0xfc ${sub}`);
    } else throw new Error(`unknown instruction 0x${op.toString(16)}`);
  }
  pieces.push(body.subarray(from));
  return { pieces, callees };
}

/** The module read once: its function bodies, and `write(order)`, the module with its
 * defined functions in that order (the old index at each new place), which only joins. */
export function reorderer(bytes) {
  const { sections, funcTypes, bodies } = readModule(bytes);
  const split = bodies.map(splitBody);
  const n = bodies.length;
  const u = (x) => Uint8Array.from(leb(x));
  const write = (order) => {
    const map = new Array(n);
    order.forEach((old, now) => { map[old] = now; });
    if (order.length !== n || map.includes(undefined)) throw new Error('the order is not a permutation of the functions');
    const fn = (idx) => {
      if (map[idx] === undefined) throw new Error(`a reference to an unknown function ${idx}`);
      return map[idx];
    };
    const out = [Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])];
    for (const { id, bytes: raw } of sections) {
      const parts = [];
      const s = new Reader(raw);
      if (id === SEC.func) {
        parts.push(u(n), ...order.map((old) => u(funcTypes[old])));
      } else if (id === SEC.code) {
        parts.push(u(n));
        for (const old of order) {
          const { pieces, callees } = split[old];
          const joined = [pieces[0]];
          callees.forEach((c, k) => joined.push(u(fn(c)), pieces[k + 1]));
          const body = Buffer.concat(joined);
          parts.push(u(body.length), body);
        }
      } else if (id === SEC.export) {
        let count = s.uleb();
        parts.push(u(count));
        for (; count > 0; count--) {
          const start = s.pos;
          s.name();
          const kind = s.byte();
          parts.push(raw.subarray(start, s.pos), u(kind === 0 ? fn(s.uleb()) : s.uleb()));
        }
      } else if (id === SEC.start) {
        parts.push(u(fn(s.uleb())));
      } else if (id === SEC.elem) {
        let count = s.uleb();
        parts.push(u(count));
        for (; count > 0; count--) {
          const flags = s.uleb();
          if (flags !== 0) throw new Error(`element segment kind ${flags} is not read here`);
          const start = s.pos;
          const op = s.byte(); // the offset: i32.const N or global.get G, then end
          if (op === 0x41) s.skipLeb();
          else if (op === 0x23) s.uleb();
          else throw new Error(`element segment offset 0x${op.toString(16)} is not read here`);
          if (s.byte() !== 0x0b) throw new Error('element segment offset longer than one instruction');
          parts.push(u(0), raw.subarray(start, s.pos));
          let k = s.uleb();
          parts.push(u(k));
          for (; k > 0; k--) parts.push(u(fn(s.uleb())));
        }
      } else {
        parts.push(raw);
      }
      const body = Buffer.concat(parts);
      out.push(Uint8Array.from([id, ...leb(body.length)]), body);
    }
    return new Uint8Array(Buffer.concat(out));
  };
  return { bodies, write };
}

const gz = (b) => gzipSync(b, { level: 9 }).length;

/** A first order: from the largest function, each next the one that deflates best right
 * after the last (about 30 B better at the end of the search than starting from
 * wasm-opt's order, over three seeds). */
function chainOfLookAlikes(bodies) {
  const deflated = (b) => deflateRawSync(b, { level: 9 }).length;
  const alone = bodies.map(deflated);
  const left = new Set(bodies.keys());
  let last = 0;
  for (const k of left) if (bodies[k].length > bodies[last].length) last = k;
  const chain = [last];
  left.delete(last);
  while (left.size) {
    let next = -1, cost = Infinity;
    for (const k of left) {
      const c = deflated(Buffer.concat([bodies[last], bodies[k]])) - alone[last] - alone[k];
      if (c < cost) { cost = c; next = k; }
    }
    chain.push(next);
    left.delete(next);
    last = next;
  }
  return chain;
}

/** The order found by a deterministic search: from a chain of look-alikes, runs of 1-8
 * functions moved elsewhere, each move kept when the module written in that order packs
 * smaller. */
export function searchOrder({ bodies, write }, evals) {
  let order = chainOfLookAlikes(bodies);
  let best = gz(write(order));
  let seed = 20201;
  const rnd = (n) => { seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; return seed % n; };
  for (let e = 0; e < evals; e++) {
    const next = order.slice();
    const run = next.splice(rnd(next.length), 1 + rnd(8));
    next.splice(rnd(next.length + 1), 0, ...run);
    const s = gz(write(next));
    if (s < best) { best = s; order = next; }
  }
  return order;
}

function exportsOf(bytes) {
  return WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => `${e.kind}:${e.name}`).join(',');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = process.argv[2];
  const i = process.argv.indexOf('--evals');
  const evals = i > 0 ? Number(process.argv[i + 1]) : 12000;
  const input = new Uint8Array(readFileSync(path));
  try {
    const module = reorderer(input);
    const output = module.write(searchOrder(module, evals));
    if (!WebAssembly.validate(output)) throw new Error('the reordered module does not validate');
    if (exportsOf(output) !== exportsOf(input)) throw new Error('the reordered module exports something else');
    const was = gz(input), now = gz(output);
    if (now >= was) throw new Error(`no gain (${was} -> ${now} B gzip)`);
    writeFileSync(path, output);
    console.log(`[wasm-order] functions reordered for gzip: ${was} -> ${now} B (${now - was} B)`);
  } catch (e) {
    console.warn(`[wasm-order] WARNING: left as it was: ${e.message}`);
  }
}
