// The matrix's static server: this folder's page and the built package (dist/web),
// revalidated on every load. `?mime=octet` on the .wasm answers it as
// application/octet-stream, so a test can see what an engine's compileStreaming does with
// a server that sends the wrong type.
import { isBuilt, buildId } from '../support/build.mjs';
import { serveRepo } from '../support/static.mjs';

export { ROOT } from '../support/static.mjs';
export const PAGE_PATH = '/tests/engines/page.html';
const SERVED = ['/tests/engines/', '/dist/web/'];

export function startSite({ host = '127.0.0.1' } = {}) {
  const typeFor = (url, file) => (file.endsWith('.wasm') && url.searchParams.get('mime') === 'octet' ? 'application/octet-stream' : undefined);
  // Cacheable (revalidated each load): an engine keeps a page in its back/forward cache
  // only then (the cached-tab scenario).
  return serveRepo(SERVED, { host, typeFor, cacheControl: 'no-cache' });
}

export { isBuilt, buildId };

