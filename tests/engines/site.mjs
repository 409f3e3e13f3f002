// The matrix's static server: this folder's page and the built package (dist/web), never
// cached. `?mime=octet` on the .wasm answers it as application/octet-stream, so a test
// can see what an engine's compileStreaming does with a server that sends the wrong type.
import http from 'node:http';
import path from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { isBuilt, buildId } from '../support/build.mjs';
import { fileURLToPath } from 'node:url';
import { MIME } from '../support/browser.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PAGE_PATH = '/tests/engines/page.html';
const SERVED = ['/tests/engines/', '/dist/web/'];

function fileFor(urlPath) {
  let p;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p.includes('\0') || p.includes('\\')) return null;
  const norm = path.posix.normalize(p);
  if (norm !== p || !SERVED.some((s) => norm.startsWith(s))) return null;
  return path.join(ROOT, norm);
}

export async function startSite({ host = '127.0.0.1' } = {}) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://site.invalid');
    const file = fileFor(url.pathname);
    try {
      if (!file || req.method !== 'GET' || !(await stat(file)).isFile()) throw new Error('not found');
      const data = await readFile(file);
      let type = MIME[path.extname(file)] || 'application/octet-stream';
      if (file.endsWith('.wasm') && url.searchParams.get('mime') === 'octet') type = 'application/octet-stream';
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': data.length });
      res.end(data);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, host, resolve); });
  return {
    url: `http://${host}:${server.address().port}`,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

export { isBuilt, buildId };

