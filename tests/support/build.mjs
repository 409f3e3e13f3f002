// Which browser build a test run used: shared by the queue tests and the engine matrix.
import path from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WASM = path.join(ROOT, 'dist/web/klaviyo_wasm_bg.wasm');

export function isBuilt() {
  return existsSync(path.join(ROOT, 'dist/web/index.js')) && existsSync(path.join(ROOT, 'dist/web/inline.js')) && existsSync(WASM);
}

/** sha256 (first 12 hex) and mtime of the built wasm: which build a run tested. */
export function buildId() {
  try {
    const hash = createHash('sha256').update(readFileSync(WASM)).digest('hex').slice(0, 12);
    return `${hash} (${statSync(WASM).mtime.toISOString()})`;
  } catch {
    return 'none';
  }
}
