// The browser suites' static server: the repo's files under the trees a suite lists (its
// test page and dist/web), GET only, never cached, nothing outside those trees.
import http from 'node:http';
import path from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MIME } from './browser.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The file under ROOT that `urlPath` names, or null when it is not in one of the `served`
 * trees (each '/a/b/'), is malformed, or tries to leave them ('..', '\', NUL).
 */
export function repoFile(urlPath, served) {
  let p;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p.includes('\0') || p.includes('\\')) return null;
  const norm = path.posix.normalize(p);
  if (norm !== p || !served.some((s) => norm.startsWith(s))) return null;
  return path.join(ROOT, norm);
}

export function mimeFor(file) {
  return MIME[path.extname(file)] || 'application/octet-stream';
}

/**
 * Serves `served` (see repoFile). Hooks for the suites that need them:
 * `delayFor(url, file)` -> ms to wait before answering, or a promise to wait for (a
 * download held until the test lets it go); `typeFor(url, file)` -> a
 * Content-Type to send instead of the file's own; `headersFor(url, file)` -> more
 * response headers (a Content-Security-Policy); `cacheControl` ('no-store' unless told:
 * a page kept out of the back/forward cache unless a suite wants it there).
 */
export async function serveRepo(served, { host = '127.0.0.1', port = 0, delayFor, typeFor, headersFor, cacheControl = 'no-store' } = {}) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://site.invalid');
    const file = repoFile(url.pathname, served);
    const delay = (file && delayFor?.(url, file)) || 0;
    if (delay?.then) await delay;
    else if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    try {
      if (!file || req.method !== 'GET' || !(await stat(file)).isFile()) throw new Error('not found');
      const data = await readFile(file);
      const type = typeFor?.(url, file) || mimeFor(file);
      res.writeHead(200, { ...headersFor?.(url, file), 'Content-Type': type, 'Cache-Control': cacheControl, 'Content-Length': data.length });
      res.end(data);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  return {
    url: `http://${host}:${server.address().port}`,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
