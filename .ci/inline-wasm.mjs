// .ci/inline-wasm.mjs MODULE WASM: writes two things over their placeholders in the
// inline build's minified module (js/wasm-source-inline.js):
// - the .wasm's bytes, as a template literal of Latin-1 characters, one a byte (UTF-8 in
//   the file: a byte under 0x80 is one byte of text, the rest two). Escaped: `\`, `` ` ``,
//   `${` and CR (a template literal reads CR and CRLF as LF). The literal opens the file,
//   as a variable the placeholder's place then names (see below);
// - the decoder's bytes (js/latin1-decoder.wat, assembled here by binaryen's wasm-as), as
//   an array literal.
// Fails unless each placeholder is there exactly once, in quotes, and unless the literal,
// read back as JavaScript reads it, is the .wasm's bytes.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [modulePath, wasmPath] = process.argv.slice(2);

function assemble(wat) {
  const dir = mkdtempSync(path.join(tmpdir(), 'latin1-'));
  try {
    const out = path.join(dir, 'decoder.wasm');
    const run = spawnSync(path.join(ROOT, 'node_modules/.bin/wasm-as'), [wat, '-o', out], { stdio: 'inherit' });
    if (run.status !== 0) throw new Error(`wasm-as failed on ${wat}`);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function latin1Literal(bytes) {
  let literal = '`';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x5c) literal += '\\\\';
    else if (b === 0x60) literal += '\\`';
    else if (b === 0x0d) literal += '\\r';
    else if (b === 0x24 && bytes[i + 1] === 0x7b) literal += '\\$';
    else literal += String.fromCharCode(b);
  }
  return `${literal}\``;
}

let text = readFileSync(modulePath, 'utf8');
const put = (placeholder, literal) => {
  const spots = [...text.matchAll(new RegExp(`(["'\`])${placeholder}\\1`, 'g'))];
  if (spots.length !== 1 || text.split(placeholder).length !== 2) {
    console.error(`inline-wasm: ${modulePath} holds ${placeholder} ${text.split(placeholder).length - 1} times (want once, quoted)`);
    process.exit(1);
  }
  const [spot] = spots;
  text = text.slice(0, spot.index) + literal + text.slice(spot.index + spot[0].length);
};
const wasm = readFileSync(wasmPath);
const literal = latin1Literal(wasm);
// The literal read back as JavaScript reads it must be the bytes, one character each.
const back = new Function(`return ${literal}`)();
if (back.length !== wasm.length || wasm.some((b, i) => back.charCodeAt(i) !== b)) {
  console.error(`inline-wasm: the literal does not read back as ${wasmPath}`);
  process.exit(1);
}
put('__KLAVIYO_LATIN1_DECODER__', `[${[...assemble(path.join(ROOT, 'js/latin1-decoder.wat'))].join(',')}]`);
// The bytes go first in the file, read through a module-scope variable: gzip then packs
// the page 1.2 KB smaller than with them in the middle of the code, where the minifier
// leaves them (measured at levels 6 and 9; brotli is the same either way).
const NAME = '__klaviyoWasmBytes';
if (text.includes(NAME)) {
  console.error(`inline-wasm: ${modulePath} already holds the name ${NAME}`);
  process.exit(1);
}
put('__KLAVIYO_WASM_BYTES__', NAME);
text = `var ${NAME}=${literal};${text}`;
writeFileSync(modulePath, text, 'utf8');
