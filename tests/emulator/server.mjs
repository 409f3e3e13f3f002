// Local stand-in for https://a.klaviyo.com, driven by the OpenAPI subset.
// Module: startEmulator(); CLI: node tests/emulator/server.mjs [--port 8787] [--host 127.0.0.1] [--log]
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSpec, describeErrors } from './spec.mjs';
import { checkRevision, checkCompanyId, parseAuthorization, contentTypeOk, proseChecks, extractUniqueIds } from './checks.mjs';
import { FaultQueue } from './faults.mjs';
import { RecordStore, maskHeaders, queryObject, sha256 } from './records.mjs';
import { errorDocument, successAnswer, ProfileStore } from './answers.mjs';

const JSON_API = 'application/vnd.api+json';
// Klaviyo's documented ceiling (event-bulk-create-jobs: 5MB).
const MAX_BODY = 5 * 1024 * 1024;
const MAX_ERRORS = 20;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(text) {
  try { return { ok: true, value: JSON.parse(text) }; } catch (e) { return { ok: false, message: e.message }; }
}

export async function startEmulator({
  port = 0,
  host = '127.0.0.1',
  specPath,
  log = false,
  exposeRetryAfter = true,
  strictContentType = true,
  preflightMaxAge = 600,
  // false: start without the OpenAPI subset (a clone without ../shared), not validating.
  requireSpec = true,
} = {}) {
  const { findRoute, responseValidator, routes, validating, missing } = loadSpec(specPath, { optional: !requireSpec });
  if (!validating) {
    console.log(`[klaviyo-emulator] validation off: no OpenAPI subset at ${missing} (set KLAVIYO_OPENAPI=<path>)`);
  }
  const defaults = { exposeRetryAfter, strictContentType, preflightMaxAge };
  const config = { ...defaults };
  const records = new RecordStore();
  const faults = new FaultQueue();
  const profiles = new ProfileStore();
  let held = [];

  const say = (...args) => { if (log) console.log('[klaviyo-emulator]', ...args); };

  function corsHeaders(req) {
    const h = { 'Access-Control-Allow-Origin': req.headers.origin || '*', Vary: 'Origin' };
    // Browsers hide Retry-After from cross-origin scripts unless it is exposed;
    // tests switch this off to see how the library copes without it.
    if (config.exposeRetryAfter) h['Access-Control-Expose-Headers'] = 'Retry-After';
    return h;
  }

  function send(req, res, status, body, { type = JSON_API, headers = {}, text: asText = false } = {}) {
    if (res.destroyed || res.writableEnded) return;
    const out = { ...corsHeaders(req), ...headers };
    if (asText) {
      res.writeHead(status, { ...out, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (body === null || body === undefined) {
      // Like Klaviyo's edge: an empty answer says so (Node would send it chunked).
      res.writeHead(status, status === 204 || status === 304 ? out : { ...out, 'Content-Length': 0 });
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { ...out, 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** Answers an API request and completes its record. */
  function answer(req, res, record, status, body, headers, contentType) {
    record.status = status;
    record.accepted = status >= 200 && status < 300;
    record.pending = false;
    say(`${record.method} ${record.path} -> ${status}${record.fault ? ` [fault ${record.fault}]` : ''}`);
    send(req, res, status, body, contentType ? { headers, type: contentType, text: true } : { headers });
  }

  function reject(req, res, record, status, problems, headers) {
    const list = problems.slice(0, MAX_ERRORS);
    record.errors = list.map(({ meta, ...p }) => p);
    answer(req, res, record, status, errorDocument(status, list), headers);
  }

  function preflight(req, res, url) {
    records.addPreflight({
      path: url.pathname,
      origin: req.headers.origin ?? null,
      requestMethod: req.headers['access-control-request-method'] ?? null,
      requestHeaders: req.headers['access-control-request-headers'] ?? null,
    });
    res.writeHead(204, {
      'Access-Control-Allow-Origin': req.headers.origin || '*',
      'Access-Control-Allow-Methods': 'GET, POST, PATCH, DELETE, OPTIONS',
      'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || 'revision, content-type, authorization, x-klaviyo-*',
      'Access-Control-Max-Age': String(config.preflightMaxAge),
      Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
    res.end();
  }

  // The normal (non-fault) path: route, auth, params, headers, body, rules.
  function handleApi(req, res, url, record, raw, parsed, match) {
    if (!match) return reject(req, res, record, 404, [{ detail: `No operation for ${req.method} ${url.pathname}` }]);
    if (match.methodMismatch) return reject(req, res, record, 405, [{ detail: `Method "${req.method}" not allowed.` }]);
    const { route, params } = match;
    const body = route.validate && parsed?.ok ? parsed.value : undefined;

    if (!route.isPublic) {
      const auth = parseAuthorization(req.headers.authorization);
      if (!auth.ok) {
        return reject(req, res, record, 401, auth.missing
          ? [{}]
          : [{ code: 'authentication_failed', title: 'Incorrect authentication credentials.', detail: "Expected 'Authorization: Klaviyo-API-Key <private key>'" }]);
      }
    }
    const query = Object.fromEntries(url.searchParams);
    const paramProblems = [
      ...(route.isPublic ? checkCompanyId(query.company_id) : []),
      ...route.requiredQuery.filter((q) => q !== 'company_id' && !query[q]).map((q) => ({ parameter: q, detail: `Missing required query parameter '${q}'` })),
      ...checkRevision(req.headers.revision),
    ];
    if (paramProblems.length) return reject(req, res, record, 400, paramProblems);

    if (route.validate) {
      if (!contentTypeOk(req.headers['content-type']) && config.strictContentType) {
        return reject(req, res, record, 415, [{ detail: `Unsupported media type "${req.headers['content-type'] ?? ''}" in request; use ${JSON_API}.` }]);
      }
      if (raw.length === 0) return reject(req, res, record, 400, [{ pointer: '/', detail: 'A request body is required' }]);
      if (body === undefined) {
        return reject(req, res, record, 400, [{ code: 'parse_error', title: 'Malformed request.', pointer: '/', detail: `JSON parse error - ${parsed.message}` }]);
      }
      if (!route.validate(body)) return reject(req, res, record, 400, describeErrors(route.validate.errors, body));
      const prose = proseChecks(route.operationId, body);
      if (prose.length) return reject(req, res, record, 400, prose);
    }

    const base = `http://${req.headers.host || `${host}:${actualPort}`}`;
    const result = successAnswer({ route, params, body, query, base, profiles });
    if (result.errors) return reject(req, res, record, result.status, result.errors);
    return answer(req, res, record, result.status, result.body);
  }

  function faultAnswer(req, res, record, rule) {
    const headers = { ...(rule.retryAfter !== undefined ? { 'Retry-After': String(rule.retryAfter) } : {}), ...(rule.headers ?? {}) };
    if (rule.body !== undefined) return answer(req, res, record, rule.status, rule.body, headers, rule.contentType);
    if (rule.status < 400) return answer(req, res, record, rule.status, null, headers);
    const detail = rule.status === 429
      ? `Request was throttled.${rule.retryAfter !== undefined ? ` Expected available in ${rule.retryAfter} seconds.` : ''}`
      : `Injected fault (${rule.label}).`;
    return reject(req, res, record, rule.status, [{ detail }], headers);
  }

  async function handleNonAdmin(req, res, url) {
    const raw = await readBody(req);
    const text = raw.toString('utf8');
    const auth = parseAuthorization(req.headers.authorization);
    const parsed = text ? parseJson(text) : null;
    const record = records.add({
      method: req.method,
      path: url.pathname,
      query: queryObject(url.searchParams),
      operationId: null,
      headers: maskHeaders(req.headers),
      hasAuth: req.headers.authorization !== undefined,
      authKeyHash: auth.ok ? sha256(auth.key) : null,
      contentType: req.headers['content-type'] ?? null,
      body: parsed ? (parsed.ok ? parsed.value : text) : null,
    });
    // The client gave up before the answer (e.g. its timeout fired during a delay or hold).
    res.on('close', () => { if (!res.writableFinished && record.pending) record.clientAborted = true; });

    // Known before any fault, so faulted requests are recorded just as fully.
    const match = findRoute(req.method, url.pathname);
    if (match?.route) {
      record.operationId = match.route.operationId;
      if (parsed?.ok) record.uniqueIds = extractUniqueIds(match.route.operationId, parsed.value);
    }

    if (raw.length > MAX_BODY) return reject(req, res, record, 413, [{ detail: `Body exceeds ${MAX_BODY} bytes` }]);

    const rule = faults.take(req.method, url.pathname);
    if (rule) {
      record.fault = rule.label;
      if (rule.delayMs) await sleep(Number(rule.delayMs));
      if (rule.drop) {
        record.pending = false;
        say(`${record.method} ${record.path} -> dropped [fault ${record.fault}]`);
        req.socket.destroy();
        return undefined;
      }
      if (rule.hold) {
        record.held = true;
        await new Promise((resolve) => held.push({ resolve, record }));
        record.held = false;
      }
      if (rule.status !== undefined) return faultAnswer(req, res, record, rule);
    }
    return handleApi(req, res, url, record, raw, parsed, match);
  }

  function release(count = Infinity) {
    const now = held.slice(0, count);
    held = held.slice(now.length);
    now.forEach((h) => h.resolve());
    return now.length;
  }

  function resetAll() {
    release();
    records.reset();
    faults.clear();
    profiles.reset();
    Object.assign(config, defaults);
  }

  async function handleAdmin(req, res, url) {
    const raw = (await readBody(req)).toString('utf8');
    const parsed = raw ? parseJson(raw) : { ok: true, value: {} };
    const ok = (body, status = 200) => send(req, res, status, body, { type: 'application/json' });
    const fail = (status, message) => send(req, res, status, { error: message }, { type: 'application/json' });
    if (!parsed.ok) return fail(400, `bad JSON: ${parsed.message}`);
    const input = parsed.value;
    const route = `${req.method} ${url.pathname.replace(/\/$/, '')}`;
    switch (route) {
      case 'GET /__admin/health':
        return ok({ ok: true, operations: routes.length });
      case 'GET /__admin/requests': {
        const q = Object.fromEntries(url.searchParams);
        if (q.accepted !== undefined) q.accepted = q.accepted === 'true';
        return ok(validating ? records.summary(q) : { validation: `off: no OpenAPI subset at ${missing}`, ...records.summary(q) });
      }
      case 'POST /__admin/reset':
        resetAll();
        return ok({ ok: true });
      case 'GET /__admin/faults':
        return ok({ faults: faults.list(), held: held.length });
      case 'POST /__admin/faults':
        try {
          [].concat(input).forEach((r) => faults.add(r));
        } catch (e) {
          return fail(400, e.message);
        }
        return ok({ faults: faults.list() });
      case 'DELETE /__admin/faults':
        faults.clear();
        return ok({ faults: [] });
      case 'POST /__admin/release':
        return ok({ released: release(input?.count ?? Infinity) });
      case 'GET /__admin/config':
        return ok(config);
      case 'POST /__admin/config':
        for (const k of Object.keys(input || {})) {
          if (!(k in defaults)) return fail(400, `unknown config key: ${k}`);
        }
        Object.assign(config, input);
        return ok(config);
      default:
        return fail(404, `no admin route ${route}`);
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://emulator.invalid');
    let work;
    if (req.method === 'OPTIONS') work = Promise.resolve(preflight(req, res, url));
    else if (url.pathname.startsWith('/__admin/')) work = handleAdmin(req, res, url);
    else work = handleNonAdmin(req, res, url);
    work.catch((e) => {
      say(`internal error on ${req.method} ${url.pathname}: ${e.message}`);
      if (!res.headersSent && !res.destroyed) send(req, res, 500, errorDocument(500, [{ detail: 'Emulator internal error' }]));
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;

  return {
    url,
    port: actualPort,
    /** Same shape as GET /__admin/requests (the array is `.requests`). */
    requests: (filter = {}) => structuredClone(records.summary(filter)),
    reset: resetAll,
    addFault: (rule) => { faults.add(rule); return faults.list(); },
    clearFaults: () => faults.clear(),
    release,
    setConfig: (patch) => Object.assign(config, patch),
    responseValidator,
    close: async () => {
      // Answer held requests first so their clients are not left hanging.
      release();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// CLI entry point.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
  };
  const emulator = await startEmulator({
    port: Number(opt('port', 8787)),
    host: opt('host', '127.0.0.1'),
    log: args.includes('--log'),
  });
  console.log(`Klaviyo emulator listening on ${emulator.url}`);
  const stop = async () => { await emulator.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
