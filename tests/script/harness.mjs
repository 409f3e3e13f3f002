// What the Chromium tests of the script-tag install share: the Klaviyo emulator, a tiny
// static server for dist/script/ and the test pages (it logs every request it answers,
// so a test can count what a page fetched from us, and can delay or refuse one), and
// readers for what the emulator received.
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../emulator/server.mjs';
import { MIME } from '../support/browser.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = path.join(ROOT, 'dist', 'script');
export const COMPANY_ID = 'AbC123';
/** The URL the snippet is built with (js/script/snippet.js); pages put their own. */
const SNIPPET_URL = '"/klaviyo-wasm/klaviyo-wasm.js"';

export function isBuilt() {
  return ['klaviyo-wasm.js', 'klaviyo_wasm_bg.wasm', 'snippet.min.js'].every((f) => existsSync(path.join(DIST, f)));
}

/** The minified snippet, loading `src` (and the .wasm from `wasm`, when given). */
export function snippet(src, wasm) {
  const min = readFileSync(path.join(DIST, 'snippet.min.js'), 'utf8').trim();
  if (!min.includes(SNIPPET_URL)) throw new Error(`snippet.min.js no longer ends with ${SNIPPET_URL}`);
  return min.replace(SNIPPET_URL, JSON.stringify(src) + (wasm ? `,${JSON.stringify(wasm)}` : ''));
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the emulator and the static server.
 * - `/dist/script/<file>` and `/alt/<file>`: the built files (`?delay=ms` answers late).
 * - `/missing/<file>`: 404.
 * - `/page/<n>`: a page registered with `page(html)`.
 * `log` holds `{ path, search, start, end }` for each request but the pages.
 */
export async function startHarness() {
  const emulator = await startEmulator({ port: 0 });
  const pages = new Map();
  const log = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://test.invalid');
    const [, dir, name = ''] = url.pathname.split('/');
    try {
      if (dir === 'page' && pages.has(name)) {
        res.writeHead(200, { 'content-type': MIME['.html'], 'cache-control': 'no-store' });
        return res.end(pages.get(name));
      }
      const entry = { path: url.pathname, search: url.search, start: Date.now(), end: 0 };
      log.push(entry);
      res.on('finish', () => { entry.end = Date.now(); });
      const delay = Number(url.searchParams.get('delay') ?? 0);
      if (delay > 0) await pause(delay); // the file is "slow to download"
      const file = path.join(DIST, path.basename(url.pathname));
      if ((url.pathname.startsWith('/dist/script/') || dir === 'alt') && existsSync(file)) {
        const body = await readFile(file);
        res.writeHead(200, {
          'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
          'content-length': body.length,
          'cache-control': 'no-store',
        });
        return res.end(body);
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('not found\n');
    } catch (e) {
      res.destroy(e);
      return undefined;
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  let n = 0;
  return {
    url,
    emulator,
    log,
    /** Registers a page; returns its URL. */
    page(html) {
      const name = String(++n);
      pages.set(name, html);
      return `${url}/page/${name}`;
    },
    /** Requests for our files (`/dist/script/`, `/alt/`, `/missing/`) since the last reset. */
    ours() {
      return log.filter((e) => /^\/(dist\/script|alt|missing)\//.test(e.path));
    },
    async reset() {
      log.length = 0;
      await emulator.reset();
    },
    async close() {
      await new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      await emulator.close();
    },
  };
}

/** A page: `head` first (the snippet goes there), then `body`. */
export function html({ head = '', body = '' }) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>script tag</title>${head}</head><body>${body}</body></html>`;
}

export { events } from '../support/events.mjs';

/** The profile attributes of the accepted `/client/profiles` requests. */
export function profiles(requests) {
  return requests.filter((r) => r.accepted && r.path === '/client/profiles').map((r) => r.body.data.attributes);
}
