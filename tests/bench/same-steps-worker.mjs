// The edge benches' "same steps in JavaScript": every step our worker takes on a page's
// `/client/*` call, written as a JavaScript engineer would write them for workerd, with the
// same settings from `env` and the same answers. `tests/edge/reference-parity.test.mjs`
// sends both workers the same requests and checks they answer alike and send Klaviyo the
// same bytes; `tests/bench/edge-bench.mjs` times them side by side.
//
// The steps: the route and its prefix, the origin against ALLOWED_ORIGINS, the declared
// length, the public key and `company_id`, bots (user agent patterns of src/edge/bots.txt,
// Cloudflare's bot score), the body read under MAX_BODY_BYTES and decoded fatally, JSON with
// no duplicate key at any depth, numbers within f64, no lone surrogate and under 128 levels
// (serde_json's rules), the visitor's address and first-party cookie added to the profile
// by text edits that leave every other byte as sent, the upstream POST (no redirects) with
// its retry policy, and the answer with CORS, `nosniff` and the first-party mark.
// Only `/client/*` is ported: every other route answers 404 here.
//
// The bench embeds the bot patterns where the marker below stands (ours compiles them in).

const BOT_PATTERNS = /* BOT_PATTERNS */ [];

const CLIENT_ROUTES = new Set([
  '/client/events',
  '/client/profiles',
  '/client/subscriptions',
  '/client/event-bulk-create',
  '/client/back-in-stock-subscriptions',
]);
// Where each route's profile attributes are, and whether Klaviyo takes a location there.
const PROFILE_AT = {
  '/client/events': [['data', 'attributes', 'profile', 'data', 'attributes'], true],
  '/client/subscriptions': [['data', 'attributes', 'profile', 'data', 'attributes'], true],
  '/client/event-bulk-create': [['data', 'attributes', 'profile', 'data', 'attributes'], true],
  '/client/back-in-stock-subscriptions': [['data', 'attributes', 'profile', 'data', 'attributes'], false],
  '/client/profiles': [['data', 'attributes'], true],
};
const JSONAPI = 'application/vnd.api+json';
const EXPOSED = 'retry-after, x-klaviyo-edge';
const COOKIE = 'kw_visitor';
const MAX_ATTEMPTS = 3;
const MAX_DEPTH = 128;
const NOT_JSON = 'the body is not valid JSON';
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const ON_CLOUDFLARE = globalThis.navigator?.userAgent === 'Cloudflare-Workers';
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

// ---------- settings, read once per `env` ----------

let seenEnv;
let settings;
function config(env) {
  if (env !== seenEnv) {
    seenEnv = env;
    settings = readConfig(env);
  }
  return settings;
}

function flag(v, fallback) {
  if (v === undefined || v === null) return fallback;
  const s = String(v).toLowerCase();
  return s === 'true' || s === '1' ? true : s === 'false' || s === '0' ? false : fallback;
}

function readConfig(env) {
  const origins = String(env.ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean)
    .map((o) => o.replace(/\/+$/, '').toLowerCase());
  const secret = env.EDGE_SIGNING_SECRET || null;
  return {
    publicKey: env.KLAVIYO_PUBLIC_KEY || null,
    origins,
    apiBase: String(env.KLAVIYO_API_BASE || 'https://a.klaviyo.com').replace(/\/+$/, ''),
    revision: env.KLAVIYO_REVISION || '2026-07-15',
    secret,
    maxBody: Number(env.MAX_BODY_BYTES) || 5 * 1024 * 1024,
    prefix: String(env.ROUTE_PREFIX ?? '').replace(/\/+$/, ''),
    forwardIp: flag(env.FORWARD_VISITOR_IP, true),
    trustForwardedFor: flag(env.TRUST_FORWARDED_FOR, false),
    filterBots: flag(env.FILTER_BOTS, true),
    botScoreMin: env.BOT_SCORE_MIN === undefined ? null : Number(env.BOT_SCORE_MIN),
    // The visitor cookie's key, HMAC-SHA256(secret, label), made on first use.
    visitorKey: null,
  };
}

function allowedOrigin(cfg, origin) {
  const o = origin.replace(/\/+$/, '').toLowerCase();
  return cfg.origins.find((a) => a === o) ?? null;
}

// ---------- answers ----------

function error(status, code, title, detail, pointer) {
  const e = { code, detail };
  if (pointer !== undefined) e.source = { pointer };
  e.status = String(status);
  e.title = title;
  return { status, headers: [['content-type', JSONAPI]], body: JSON.stringify({ errors: [e] }) };
}
const empty = (status, headers = []) => ({ status, headers, body: '' });
const notFound = () => error(404, 'not_found', 'Not found.', 'no such route');
const tooLarge = () => error(413, 'too_large', 'Request body too large.', 'the body is larger than MAX_BODY_BYTES');
const invalid = (pointer, detail) => error(400, 'invalid', 'Invalid input.', detail, pointer);

function withCors(reply, origin) {
  if (origin) {
    reply.headers.push(['access-control-allow-origin', origin], ['access-control-expose-headers', EXPOSED], ['vary', 'Origin']);
  }
  return reply;
}

function respond(reply) {
  const headers = new Headers(reply.headers);
  headers.set('x-content-type-options', 'nosniff');
  const body = reply.status === 204 || reply.body === '' ? null : reply.body;
  return new Response(body, { status: reply.status, headers });
}

// ---------- the body: duplicate keys, serde_json's limits, where the profile is ----------

const escapeSegment = (s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1');
/** The pointer of where the walk is; `key`: of that key in the innermost object instead. */
const pointerOf = (stack, key) => stack
  .map((f, k) => `/${escapeSegment(key !== undefined && k === stack.length - 1 ? key : f.keys ? f.key : f.index)}`)
  .join('');

/** Walks text that JSON.parse accepted: a refusal `{ pointer, detail }`, or where the
 * object at `target` (a path of keys) begins, with its `location` object and the span of
 * its `anonymous_id` value. */
function walk(s, target) {
  const stack = [];
  const found = { at: -1, location: -1, anon: null };
  let expectKey = false;
  let valueStart = -1; // where the value of the member being read in the target object began
  const inTarget = () => found.at >= 0 && stack.length === target.length + 1 && stack[stack.length - 1].target;
  const endMember = (end) => {
    if (!inTarget()) return;
    const f = stack[stack.length - 1];
    if (f.key === 'anonymous_id' && valueStart >= 0) {
      let e = end;
      while (e > valueStart && ' \t\n\r'.includes(s[e - 1])) e -= 1;
      found.anon = [valueStart, e];
    }
    valueStart = -1;
  };
  for (let i = 0; i < s.length; i += 1) {
    const c = s[i];
    if (c === ' ' || c === '\n' || c === '\t' || c === '\r') continue;
    if (c === '"') {
      const start = i;
      let escaped = false;
      for (i += 1; s[i] !== '"'; i += 1) {
        if (s[i] === '\\') {
          escaped = true;
          if (s[i + 1] === 'u') {
            const u = parseInt(s.slice(i + 2, i + 6), 16);
            if (u >= 0xdc00 && u <= 0xdfff) return { pointer: '', detail: NOT_JSON };
            if (u >= 0xd800 && u <= 0xdbff) {
              const v = s[i + 6] === '\\' && s[i + 7] === 'u' ? parseInt(s.slice(i + 8, i + 12), 16) : -1;
              if (!(v >= 0xdc00 && v <= 0xdfff)) return { pointer: '', detail: NOT_JSON };
              i += 6;
            }
            i += 5;
          } else {
            i += 1;
          }
        }
      }
      if (expectKey) {
        const f = stack[stack.length - 1];
        const key = escaped ? JSON.parse(s.slice(start, i + 1)) : s.slice(start + 1, i);
        if (f.keys.has(key)) return { pointer: pointerOf(stack, key), detail: 'is a duplicate key' };
        f.keys.add(key);
        f.key = key;
        expectKey = false;
      } else if (inTarget() && valueStart < 0) {
        valueStart = start;
      }
      continue;
    }
    if (c === '{' || c === '[') {
      if (inTarget() && valueStart < 0) valueStart = i;
      if (stack.length + 1 >= MAX_DEPTH) return { pointer: '', detail: 'nests arrays and objects 128 or more levels deep' };
      const frame = c === '{' ? { keys: new Set(), key: null, target: false } : { keys: null, index: 0 };
      if (c === '{') {
        if (stack.length === target.length && found.at < 0 && stack.every((f, k) => f.keys && f.key === target[k])) {
          frame.target = true;
          found.at = i;
        } else if (inTarget() && stack[stack.length - 1].key === 'location' && stack.length === target.length + 1) {
          found.location = i;
        }
        expectKey = true;
      }
      stack.push(frame);
      continue;
    }
    if (c === '}' || c === ']') {
      if (c === '}') endMember(i);
      stack.pop();
      expectKey = false;
      continue;
    }
    if (c === ',') {
      endMember(i);
      const f = stack[stack.length - 1];
      if (f.keys) expectKey = true;
      else f.index += 1;
      continue;
    }
    if (c === ':') continue;
    // A literal or a number: read to its end.
    let j = i + 1;
    while (j < s.length && !',}] \t\n\r'.includes(s[j])) j += 1;
    if (inTarget() && valueStart < 0) valueStart = i;
    if (c !== 't' && c !== 'f' && c !== 'n' && !Number.isFinite(Number(s.slice(i, j)))) {
      const f = stack[stack.length - 1];
      return { pointer: f ? pointerOf(stack) : '', detail: 'is a number out of range' };
    }
    i = j - 1;
  }
  return { found };
}

// ---------- the visitor: address and first-party cookie ----------

function ipText(t) {
  if (t === null || t === undefined) return null;
  const a = t.trim();
  if (IPV4.test(a)) return a;
  if (!a.includes(':')) return null;
  let host;
  try {
    host = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const hi = parseInt(mapped[1], 16);
  const lo = parseInt(mapped[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function clientIp(request, cfg) {
  const seen = ON_CLOUDFLARE ? ipText(request.headers.get('cf-connecting-ip')) : null;
  if (seen || !cfg.trustForwardedFor) return seen;
  const forwarded = request.headers.get('x-forwarded-for');
  return forwarded === null ? null : ipText(forwarded.split(',').pop());
}

const cookieSafe = (s) => /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7b\x7d\x7e]*$/.test(s);

async function visitorKey(cfg) {
  if (!cfg.visitorKey) {
    cfg.visitorKey = (async () => {
      const secret = await crypto.subtle.importKey('raw', encoder.encode(cfg.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      const derived = await crypto.subtle.sign('HMAC', secret, encoder.encode('klaviyo-wasm visitor id'));
      return crypto.subtle.importKey('raw', derived, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    })();
  }
  return cfg.visitorKey;
}

/** The visitor of our cookie, when its tag is right: `{ anon, kx }`. */
async function visitor(cookieHeader, cfg) {
  if (!cfg.secret || cookieHeader === null) return null;
  const pair = cookieHeader.split(';').map((c) => c.trim()).find((c) => c.startsWith(`${COOKIE}=`));
  if (!pair) return null;
  const value = pair.slice(COOKIE.length + 1).replace(/^"+|"+$/g, '');
  const bar = value.lastIndexOf('|');
  if (bar < 0) return null;
  const payload = value.slice(0, bar);
  const hex = value.slice(bar + 1);
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) return null;
  const tag = new Uint8Array(hex.length / 2);
  for (let k = 0; k < tag.length; k += 1) tag[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  if (!(await crypto.subtle.verify('HMAC', await visitorKey(cfg), tag, encoder.encode(payload)))) return null;
  const parts = payload.split('|');
  if (parts.length !== 3 || parts[0] !== 'v1') return null;
  const [, anon, kx] = parts;
  if (!anon || anon.length > 128 || !cookieSafe(anon)) return null;
  if (kx && (kx.length > 256 || !cookieSafe(kx))) return null;
  return { anon, kx: kx || null };
}

/** The body with the visitor's additions, or null when it goes as received. */
function enrich(text, doc, found, route, ip, id) {
  const [path, takesLocation] = PROFILE_AT[route];
  let attrs = doc;
  for (const k of path) attrs = attrs !== null && typeof attrs === 'object' && !Array.isArray(attrs) ? attrs[k] : undefined;
  if (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs) || found.at < 0) return null;
  const edits = [];
  const front = [];
  if (id) {
    if (!Object.hasOwn(attrs, 'anonymous_id')) front.push(`"anonymous_id":${JSON.stringify(id.anon)}`);
    else if (attrs.anonymous_id !== id.anon && found.anon) edits.push([found.anon[0], found.anon[1] - found.anon[0], JSON.stringify(id.anon)]);
    // Only where the body names nobody: a call never carries two people's identifiers.
    const named = ['email', 'phone_number', 'external_id'].some((k) => Object.hasOwn(attrs, k) && attrs[k] !== null);
    if (id.kx && !Object.hasOwn(attrs, '_kx') && !named) front.push(`"_kx":${JSON.stringify(id.kx)}`);
  }
  if (ip && takesLocation) {
    const location = attrs.location;
    if (!Object.hasOwn(attrs, 'location')) front.push(`"location":{"ip":${JSON.stringify(ip)}}`);
    else if (location !== null && typeof location === 'object' && !Array.isArray(location)
      && !Object.hasOwn(location, 'ip') && found.location >= 0) {
      const comma = Object.keys(location).length === 0 ? '' : ',';
      edits.push([found.location + 1, 0, `"ip":${JSON.stringify(ip)}${comma}`]);
    }
  }
  if (front.length) {
    const open = found.at + 1;
    const emptyObject = Object.keys(attrs).length === 0;
    edits.push([open, 0, front.join(',') + (emptyObject ? '' : ',')]);
  }
  if (!edits.length) return null;
  edits.sort((a, b) => a[0] - b[0]);
  let out = '';
  let from = 0;
  for (const [at, cut, add] of edits) {
    out += text.slice(from, at) + add;
    from = at + cut;
  }
  return out + text.slice(from);
}

// ---------- upstream ----------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function isJson(contentType) {
  if (contentType === null) return false;
  const media = contentType.split(';')[0].trim().toLowerCase();
  return media === 'application/json' || (media.startsWith('application/') && media.endsWith('+json'));
}

function passthrough(status, contentType, body) {
  if (body === '') {
    return status < 400 ? empty(status)
      : error(status, 'upstream_error', 'Klaviyo did not accept the request.', 'Klaviyo refused the request without saying why');
  }
  if (!isJson(contentType)) {
    return status < 400 ? empty(status)
      : error(502, 'upstream_unexpected', "Klaviyo's answer was not understood.", "Klaviyo's answer to the request was not JSON");
  }
  return { status, headers: contentType ? [['content-type', contentType]] : [], body };
}

function retryAfterSecs(value) {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil(at / 1000) - Math.floor(Date.now() / 1000));
}

async function forward(url, headers, body, cors) {
  for (let attempt = 0; ; attempt += 1) {
    let res = null;
    try {
      res = await fetch(new Request(url, { method: 'POST', headers, body, redirect: 'manual' }));
    } catch {
      res = null;
    }
    if (res !== null) {
      const status = res.status;
      const bare = res.headers.get('content-length') === '0';
      const text = bare ? '' : await res.text();
      const contentType = bare ? null : res.headers.get('content-type');
      if (status === 429) {
        const retryAfter = res.headers.get('retry-after');
        const secs = retryAfter === null ? null : retryAfterSecs(retryAfter);
        if (secs !== null && secs <= 1 && attempt === 0) {
          await sleep(Math.max(secs * 1000, 100));
          continue;
        }
        const r = isJson(contentType) ? passthrough(429, contentType, text)
          : error(429, 'throttled', 'Request was throttled.', 'Klaviyo throttled the request; retry later');
        if (retryAfter !== null) r.headers.push(['retry-after', retryAfter]);
        return withCors(r, cors);
      }
      if (status >= 300 && status <= 399) {
        return withCors(error(502, 'upstream_redirect', 'Klaviyo did not accept the request.',
          'Klaviyo answered with a redirect, which the worker does not follow'), cors);
      }
      if (status < 500) return withCors(passthrough(status, contentType, text), cors);
    }
    if (attempt + 1 >= MAX_ATTEMPTS) {
      return withCors(error(502, 'upstream_unavailable', 'Klaviyo did not accept the request.',
        'Klaviyo failed or could not be reached after 3 attempts; retry later'), cors);
    }
    await sleep(200 << attempt);
  }
}

// ---------- the route ----------

async function client(request, cfg, route, origin, allowed, url) {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared.trim()) > cfg.maxBody) return withCors(tooLarge(), allowed);
  if (!cfg.publicKey) return withCors(error(500, 'missing_setting', 'The worker is not configured.', 'KLAVIYO_PUBLIC_KEY is not set'), allowed);
  if (origin !== null && allowed === null) {
    return error(403, 'forbidden_origin', 'Forbidden.', 'this origin is not in ALLOWED_ORIGINS');
  }
  if (url.searchParams.get('company_id') !== cfg.publicKey) {
    return withCors(error(403, 'wrong_company', 'Forbidden.', "company_id is not this shop's public key"), allowed);
  }
  if (cfg.filterBots) {
    const score = cfg.botScoreMin === null ? undefined : request.cf?.botManagement?.score;
    let bot = typeof score === 'number' && score >= 1 && score <= 99 && score < cfg.botScoreMin ? 'score' : null;
    if (!bot) {
      const ua = request.headers.get('user-agent');
      if (ua !== null) {
        const lower = ua.toLowerCase();
        if (BOT_PATTERNS.some((p) => lower.includes(p))) bot = 'user-agent';
      }
    }
    if (bot) return withCors(empty(202, [['x-klaviyo-edge-bot', bot], ...(cfg.secret ? [['x-klaviyo-edge', 'id']] : [])]), allowed);
  }
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.length > cfg.maxBody) return withCors(tooLarge(), allowed);
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    return withCors(error(400, 'malformed', 'Malformed body.', 'the body is not valid UTF-8'), allowed);
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    return withCors(invalid('', NOT_JSON), allowed);
  }
  const walked = walk(text, PROFILE_AT[route][0]);
  if (!walked.found) return withCors(invalid(walked.pointer, walked.detail), allowed);
  const ip = cfg.forwardIp ? clientIp(request, cfg) : null;
  const cookie = request.headers.get('cookie');
  const id = cookie !== null && cfg.secret ? await visitor(cookie, cfg) : null;
  const enriched = ip || id ? enrich(text, doc, walked.found, route, ip, id) : null;
  const headers = new Headers();
  headers.append('content-type', JSONAPI);
  headers.append('revision', request.headers.get('revision') ?? cfg.revision);
  const ua = request.headers.get('user-agent');
  if (ua !== null) headers.append('user-agent', ua);
  const reply = await forward(`${cfg.apiBase}${route}?company_id=${cfg.publicKey}`, headers, enriched ?? bytes, allowed);
  if (cfg.secret) reply.headers.push(['x-klaviyo-edge', 'id']);
  return reply;
}

function preflight(allowed, known) {
  if (allowed && known) {
    return empty(204, [['access-control-allow-origin', allowed], ['access-control-allow-methods', 'POST, OPTIONS'],
      ['access-control-allow-headers', 'content-type, revision'], ['access-control-max-age', '600'], ['vary', 'Origin']]);
  }
  return allowed ? notFound() : error(403, 'forbidden_origin', 'Forbidden.', 'this origin is not in ALLOWED_ORIGINS');
}

export default {
  async fetch(request, env) {
    try {
      const cfg = config(env);
      const url = new URL(request.url);
      if (!url.pathname.startsWith(cfg.prefix)) return respond(notFound());
      const route = url.pathname.slice(cfg.prefix.length);
      const origin = request.headers.get('origin');
      const allowed = origin === null ? null : allowedOrigin(cfg, origin);
      const known = CLIENT_ROUTES.has(route);
      if (request.method === 'OPTIONS') return respond(preflight(allowed, known));
      if (!known) return respond(withCors(notFound(), allowed));
      if (request.method !== 'POST') {
        const refused = error(405, 'method_not_allowed', 'Method not allowed.', 'this route takes POST');
        refused.headers.push(['allow', 'POST']);
        return respond(withCors(refused, allowed));
      }
      return respond(await client(request, cfg, route, origin, allowed, url));
    } catch {
      return respond(error(500, 'worker_error', 'The worker failed.', 'the worker could not handle this request'));
    }
  },
};
