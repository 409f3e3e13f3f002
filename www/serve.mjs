// The demo storefront in one command: the Klaviyo emulator plus a tiny static server
// for this repository (the page, and the built package in dist/).
//
//   node www/serve.mjs            # or: npm run demo (builds first)
//   PORT=0 EMULATOR_PORT=0 node www/serve.mjs   # any free ports
//
// Module use (the e2e tests): `const demo = await startDemo({ port: 0, emulatorPort: 0 })`
// -> `{ url, emulator, close() }`.
import http from 'node:http';
import { existsSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../tests/emulator/server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPANY_ID = 'AbC123';
const BUILD_HINT = 'dist/web/index.js is missing: run `npm run build` first (it builds the wasm package into dist/web/).';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** Only these top-level folders are served (plus `/` and `/config.json`). */
const SERVED_DIRS = ['www', 'dist'];

/** Whether the browser package has been built. */
export function isBuilt() {
  return existsSync(path.join(ROOT, 'dist', 'web', 'index.js'));
}

/**
 * Maps a request path to a file under ROOT, or returns `{status}` when it must be refused.
 * Refuses anything that is not plainly inside www/ or dist/: `..` or `.` segments (raw
 * or percent-encoded), backslashes, NUL bytes, and anything that resolves outside.
 */
function resolvePath(pathname) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return { status: 400 };
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return { status: 400 };
  const segments = decoded.split('/').slice(1);
  if (segments.some((s) => s === '..' || s === '.')) return { status: 403 };
  if (!SERVED_DIRS.includes(segments[0])) return { status: 404 };
  const file = path.resolve(ROOT, ...segments);
  const base = path.join(ROOT, segments[0]) + path.sep;
  if (!file.startsWith(base)) return { status: 403 };
  return { file, base };
}

async function serveFile(req, res, file, base) {
  let real;
  try {
    real = await realpath(file);
    // A symlink must not lead out of the served folder either.
    const realBase = (await realpath(base)) + path.sep;
    if (!real.startsWith(realBase)) return plain(res, 403, 'Forbidden\n');
    if (!(await stat(real)).isFile()) return plain(res, 404, 'Not found\n');
  } catch {
    if (file === path.join(ROOT, 'dist', 'web', 'index.js')) return plain(res, 404, `${BUILD_HINT}\n`);
    return plain(res, 404, 'Not found\n');
  }
  const body = await readFile(real);
  res.writeHead(200, {
    'Content-Type': MIME[path.extname(real).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function plain(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(text);
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

const hostForUrl = (host) => (host.includes(':') ? `[${host}]` : host);

/**
 * Starts the emulator and the static server.
 * @param {{port?: number, emulatorPort?: number, host?: string, log?: boolean}} [options]
 * @returns {Promise<{url: string, port: number, emulator: Awaited<ReturnType<typeof startEmulator>>, built: boolean, close(): Promise<void>}>}
 */
export async function startDemo({ port = 8080, emulatorPort = 8787, host = '127.0.0.1', log = false } = {}) {
  // A clone without ../shared still runs the demo: the emulator then answers without
  // validating bodies, and says so on start and in /__admin/requests.
  const emulator = await startEmulator({ port: emulatorPort, host, log, requireSpec: false });
  const config = JSON.stringify({ companyId: COMPANY_ID, apiBase: emulator.url });

  const server = http.createServer((req, res) => {
    const handle = async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return plain(res, 405, 'Method not allowed\n');
      }
      const { pathname } = new URL(req.url, 'http://demo.invalid');
      if (pathname === '/' || pathname === '/index.html') {
        return serveFile(req, res, path.join(ROOT, 'www', 'index.html'), path.join(ROOT, 'www'));
      }
      if (pathname === '/config.json') {
        res.writeHead(200, { 'Content-Type': MIME['.json'], 'Cache-Control': 'no-store' });
        return res.end(req.method === 'HEAD' ? undefined : config);
      }
      if (pathname === '/favicon.ico') {
        res.writeHead(204);
        return res.end();
      }
      // Look at the raw path too: URL parsing already folds plain `..` segments away.
      const raw = req.url.split(/[?#]/)[0];
      if (/(^|\/)\.\.?(\/|$)/.test(raw)) return plain(res, 403, 'Forbidden\n');
      const target = resolvePath(pathname);
      if (target.status) return plain(res, target.status, target.status === 404 ? 'Not found\n' : 'Forbidden\n');
      return serveFile(req, res, target.file, target.base);
    };
    handle().catch((e) => {
      if (!res.headersSent) plain(res, 500, 'Internal error\n');
      else res.destroy();
      if (log) console.error('[demo]', e);
    });
  });

  let actualPort;
  try {
    actualPort = await listen(server, port, host);
  } catch (e) {
    await emulator.close();
    throw e;
  }
  const url = `http://${hostForUrl(host)}:${actualPort}/`;
  return {
    url,
    port: actualPort,
    emulator,
    built: isBuilt(),
    close: async () => {
      await new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await emulator.close();
    },
  };
}

function envPort(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`${name} must be a port number (0 picks a free one), got "${v}"`);
    process.exit(2);
  }
  return n;
}

// CLI entry point.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (!isBuilt()) {
    console.error(`\n  ${BUILD_HINT}\n  The page will not work until it exists.\n`);
  }
  let demo;
  try {
    demo = await startDemo({
      port: envPort('PORT', 8080),
      emulatorPort: envPort('EMULATOR_PORT', 8787),
      host: process.env.HOST || '127.0.0.1',
      log: process.argv.includes('--log'),
    });
  } catch (e) {
    const hint = e.code === 'EADDRINUSE' ? ' (port in use: set PORT / EMULATOR_PORT, 0 = any free port)' : '';
    console.error(`Could not start the demo: ${e.message}${hint}`);
    process.exit(1);
  }
  console.log(`Demo storefront: ${demo.url}`);
  console.log(`Klaviyo emulator: ${demo.emulator.url}/__admin/requests`);
  const stop = async () => {
    await demo.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
