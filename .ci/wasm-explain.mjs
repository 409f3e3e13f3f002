// .ci/wasm-explain.mjs — a minimal wasm binary reader for the size report (`npm run size --
// --explain`). No dependencies. explainWasm(bytes) returns
//   { rows: [{ name, raw, bytes, kind: 'func'|'data', export? }], totals: { func, data, file },
//     sections: [{ id, name?, size }], funcImports }
// in module order, where a function's bytes are its code-section body size, a data
// segment's bytes its payload size, `raw` the name as stored, `name` its shortName and
// `export` the name a function is exported under, if it is. Names come from the `name` custom section (function names, subsection 1;
// data segment names, subsection 9); unnamed entries read `func[N]` / `data[N]`.
// Format: https://webassembly.github.io/spec/core/binary/modules.html

const SECTION = { custom: 0, import: 2, export: 7, code: 10, data: 11 };

export class Reader {
  constructor(bytes, pos = 0, end = bytes.length) {
    this.b = bytes;
    this.pos = pos;
    this.end = end;
  }
  byte() {
    if (this.pos >= this.end) throw new Error(`wasm: unexpected end at byte ${this.pos}`);
    return this.b[this.pos++];
  }
  // Unsigned LEB128. Plain arithmetic, not bit ops: memory64 limits may exceed 32 bits.
  uleb() {
    let n = 0, scale = 1, x;
    do { x = this.byte(); n += (x & 0x7f) * scale; scale *= 128; } while (x & 0x80);
    return n;
  }
  // Signed LEB128: only skipped (const expressions), so the value is not needed.
  skipLeb() { while (this.byte() & 0x80); }
  skip(n) {
    if (this.pos + n > this.end) throw new Error(`wasm: ${n} bytes past the end at ${this.pos}`);
    this.pos += n;
  }
  name() {
    const len = this.uleb();
    const start = this.pos;
    this.skip(len);
    return new TextDecoder().decode(this.b.subarray(start, start + len));
  }
}

// A value / reference type: one byte, except the GC proposal's (ref null? heaptype) forms.
function skipValType(r) {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.skipLeb(); // heap type is an s33
}

function skipLimits(r) {
  const flags = r.uleb();
  r.uleb();                // min
  if (flags & 1) r.uleb(); // max
}

// A constant expression (data segment offset), up to its `end` (0x0b).
function skipConstExpr(r) {
  for (;;) {
    const op = r.byte();
    if (op === 0x0b) return;
    if (op === 0x41 || op === 0x42) r.skipLeb();            // i32.const / i64.const
    else if (op === 0x43) r.skip(4);                         // f32.const
    else if (op === 0x44) r.skip(8);                         // f64.const
    else if (op === 0x23 || op === 0xd2) r.uleb();           // global.get / ref.func
    else if (op === 0xd0) r.skipLeb();                       // ref.null heaptype
    else if (op >= 0x6a && op <= 0x7e) continue;             // extended-const add/sub/mul
    else throw new Error(`wasm: unsupported opcode 0x${op.toString(16)} in a constant expression`);
  }
}

// Number of imported functions: defined function i has function index imports + i.
function countFuncImports(r) {
  let funcs = 0;
  for (let n = r.uleb(); n > 0; n--) {
    r.name(); r.name();                                      // module, field
    const kind = r.byte();
    if (kind === 0x00) { funcs++; r.uleb(); }                // func: type index
    else if (kind === 0x01) { skipValType(r); skipLimits(r); } // table
    else if (kind === 0x02) skipLimits(r);                   // memory
    else if (kind === 0x03) { skipValType(r); r.byte(); }    // global: type, mutability
    else if (kind === 0x04) { r.byte(); r.uleb(); }          // tag: attribute, type index
    else throw new Error(`wasm: unknown import kind ${kind}`);
  }
  return funcs;
}

// The `name` section: { funcs: Map<funcIndex, name>, data: Map<segmentIndex, name> }.
function readNames(r, names) {
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.uleb();
    const sub = new Reader(r.b, r.pos, r.pos + size);
    r.skip(size);
    const map = id === 1 ? names.funcs : id === 9 ? names.data : null;
    if (!map) continue;                                      // module, locals, globals, ...
    for (let n = sub.uleb(); n > 0; n--) {
      const idx = sub.uleb();
      map.set(idx, sub.name());
    }
  }
}

export function parseWasm(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) {
    throw new Error('wasm: not a WebAssembly binary (bad magic)');
  }
  const r = new Reader(b, 8);
  const sections = [];                                       // { id, name?, size }
  const bodies = [];                                         // code body sizes, in order
  const segments = [];                                       // data payload sizes, in order
  const names = { funcs: new Map(), data: new Map() };
  const exports = new Map();                                 // function index -> export name
  let funcImports = 0;
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.uleb();
    const s = new Reader(b, r.pos, r.pos + size);
    r.skip(size);
    const sec = { id, size };
    sections.push(sec);
    if (id === SECTION.custom) {
      sec.name = s.name();
      // A malformed name section only costs the names, not the report.
      if (sec.name === 'name') { try { readNames(s, names); } catch { /* keep what was read */ } }
    } else if (id === SECTION.import) {
      funcImports = countFuncImports(s);
    } else if (id === SECTION.export) {
      for (let n = s.uleb(); n > 0; n--) {
        const name = s.name(), kind = s.byte(), idx = s.uleb();
        if (kind === 0x00 && !exports.has(idx)) exports.set(idx, name);
      }
    } else if (id === SECTION.code) {
      for (let n = s.uleb(); n > 0; n--) { const len = s.uleb(); bodies.push(len); s.skip(len); }
    } else if (id === SECTION.data) {
      for (let n = s.uleb(); n > 0; n--) {
        const flags = s.uleb();
        if (flags === 2) s.uleb();                           // explicit memory index
        if (flags !== 1) skipConstExpr(s);                   // active: offset; 1 = passive
        const len = s.uleb();
        segments.push(len);
        s.skip(len);
      }
    }
  }
  return { size: b.length, sections, funcImports, bodies, segments, names, exports };
}

// Display form of a (demangled) Rust symbol: `crate[0123abcd]` -> `crate`, no trailing
// `::h0123…` legacy hash. A name longer than `max` loses, until it fits: the paths of the
// traits in `<T as a::b::Trait>`, then generic argument lists (deepest first, -> `<…>`),
// then its middle. The leading path (where the code comes from) and the end (the method)
// are what is kept longest.
export function shortName(name, max = 100) {
  let s = name
    .replace(/\[[0-9a-f]{8,}\]/g, '')
    .replace(/::h[0-9a-f]{16}$/, '')
    .replace(/\s+/g, ' ');
  if (s.length > max) s = s.replace(/ as (?:\w+::)+/g, ' as ');
  s = s.replace(/->/g, '\u2192');                           // `fn(A) -> B`: keep `>` balanced
  while (s.length > max) {
    const next = collapseOne(s);
    if (next === s) break;
    s = next;
  }
  s = s.replace(/\u2192/g, '->');
  if (s.length <= max) return s;
  const head = Math.ceil((max - 1) * 0.65);
  return `${s.slice(0, head)}…${s.slice(s.length - (max - 1 - head))}`;
}

// Replace the deepest (then longest) generic argument list not yet collapsed with `<…>`.
// Only a `<` right after a name or `::` opens generic arguments: `<T as Trait>` and `<[u8]>`
// starting a qualified path stay, so `<…>::method` never loses the type it belongs to.
function collapseOne(s) {
  const stack = [];
  let best = null;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '<') stack.push({ start: i, generic: /[\w:]/.test(s[i - 1] ?? '') });
    else if (s[i] === '>' && stack.length) {
      const g = { ...stack.pop(), end: i, depth: stack.length };
      if (!g.generic || s.slice(g.start + 1, i) === '…') continue;
      if (!best || g.depth > best.depth || (g.depth === best.depth && g.end - g.start > best.end - best.start)) best = g;
    }
  }
  return best ? `${s.slice(0, best.start)}<…>${s.slice(best.end + 1)}` : s;
}

export function explainWasm(bytes) {
  const p = parseWasm(bytes);
  const rows = [];
  p.bodies.forEach((len, i) => {
    const idx = p.funcImports + i;
    const raw = p.names.funcs.get(idx) ?? `func[${idx}]`;
    const row = { name: shortName(raw), raw, bytes: len, kind: 'func' };
    if (p.exports.has(idx)) row.export = p.exports.get(idx);
    rows.push(row);
  });
  p.segments.forEach((len, i) => {
    const raw = p.names.data.has(i) ? `data[${i}] ${p.names.data.get(i)}` : `data[${i}]`;
    rows.push({ name: shortName(raw), raw, bytes: len, kind: 'data' });
  });
  const sum = (kind) => rows.filter((x) => x.kind === kind).reduce((n, x) => n + x.bytes, 0);
  return {
    rows,
    totals: { func: sum('func'), data: sum('data'), file: p.size },
    sections: p.sections,
    funcImports: p.funcImports,
  };
}
