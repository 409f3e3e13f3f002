// Loads the Klaviyo OpenAPI subset (never copied into the project) and builds
// the route table plus one compiled request validator per operation.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const defaultSpecPath = () =>
  process.env.KLAVIYO_OPENAPI ||
  path.resolve(repoRoot, '../shared/klaviyo-openapi/klaviyo-openapi-subset.json');

const SPEC_ID = 'urn:klaviyo-emulator:spec';
// The same components with every resource's `attributes` closed (closeAttributes): what
// request bodies are checked against. Answers are checked against the spec as it is.
const REQUEST_SPEC_ID = 'urn:klaviyo-emulator:request-spec';
const JSON_API = 'application/vnd.api+json';
const METHODS = ['get', 'post', 'patch', 'put', 'delete'];
// Marks the schema nodes this module adds, so their errors can be dropped as noise.
const NOISE = 'x-emulator-nullable';

// OpenAPI 3.0 `nullable` -> JSON Schema. Ajv 8 handles `nullable: true` next
// to `type` by itself, but refuses it without `type` (e.g. next to `$ref` or
// `oneOf`), and it never lets null through an `enum`. Klaviyo accepts null for
// those fields, so rewrite exactly these cases.
function rewriteNullable(node) {
  if (Array.isArray(node)) return node.map(rewriteNullable);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    // `properties` maps names to schemas: a property may be called "nullable".
    out[k] = k === 'properties'
      ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, rewriteNullable(s)]))
      : k === 'example' || k === 'default' ? v : rewriteNullable(v);
  }
  if (out.nullable === undefined) return out;
  const nullable = out.nullable === true;
  delete out.nullable;
  if (!nullable) return out;
  if (out.type !== undefined) {
    out.nullable = true;
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  // In OpenAPI 3.0 siblings of $ref are ignored; keep only the ref.
  const inner = out.$ref ? { $ref: out.$ref } : out;
  if (Object.keys(inner).filter((k) => k !== 'description').length === 0) return {};
  return { [NOISE]: true, anyOf: [{ type: 'null', [NOISE]: true }, inner] };
}

// Klaviyo answers 400 "'x' is not a valid field for the resource 'profile'" for a
// member a resource's `attributes` does not define (at any depth: a profile inside a
// subscription too), though the spec never says `additionalProperties: false`. Every
// object schema held by a property named `attributes` that lists its members is closed
// here. Free-form members (an event's `properties`) list none and stay open.
function closeAttributes(node, key) {
  if (Array.isArray(node)) return node.map((n) => closeAttributes(n));
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === 'properties'
      ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, closeAttributes(s, p)]))
      : k === 'example' || k === 'default' ? v : closeAttributes(v);
  }
  if (key === 'attributes' && out.properties && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

// Operation schemas live outside the components document: point their local
// refs at it (`id`: which one).
function absoluteRefs(node, id) {
  if (Array.isArray(node)) return node.map((n) => absoluteRefs(n, id));
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? id + v : absoluteRefs(v, id);
  }
  return out;
}

function templateToRegex(template) {
  const names = [];
  const body = template.split('/').map((seg) => {
    const m = /^\{(.+)\}$/.exec(seg);
    if (!m) return seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    names.push(m[1]);
    return '([^/]+)';
  }).join('/');
  // Klaviyo's own docs use a trailing slash (/client/events/); both work.
  return { regex: new RegExp(`^${body}/?$`), names };
}

export function createAjv() {
  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true, logger: false });
  addFormats(ajv);
  return ajv;
}

// Short rendering of an offending value for error details.
const show = (v) => {
  const t = JSON.stringify(v) ?? String(v);
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
};

/** The `type` of the resource object whose `attributes` are at `pointer` in `body`. */
function resourceType(body, pointer) {
  let node = body;
  for (const part of pointer.split('/').slice(1, -1)) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return typeof node?.type === 'string' ? node.type : 'resource';
}

/** Ajv errors -> [{pointer, detail}] with the nullable-wrapper noise removed. */
export function describeErrors(errors = [], body = undefined) {
  const out = [];
  const seen = new Set();
  for (const e of errors) {
    if (e.parentSchema && e.parentSchema[NOISE]) continue;
    let pointer = e.instancePath || '';
    let detail;
    switch (e.keyword) {
      case 'required':
        pointer = `${pointer}/${e.params.missingProperty}`;
        detail = `'${e.params.missingProperty}' is a required property`;
        break;
      case 'enum':
        detail = `${show(e.data)} is not a valid choice; expected one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'type':
        detail = `${show(e.data)} is not of type '${[].concat(e.params.type).join("' or '")}'`;
        break;
      case 'format':
        detail = `${show(e.data)} is not a valid '${e.params.format}'`;
        break;
      case 'additionalProperties':
        pointer = `${pointer}/${e.params.additionalProperty}`;
        detail = `'${e.params.additionalProperty}' is not a valid field for the resource '${resourceType(body, e.instancePath)}'.`;
        break;
      default:
        detail = `${pointer || '/'} ${e.message}`;
    }
    const key = `${pointer}|${detail}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ pointer: pointer || '/', detail });
  }
  return out;
}

function firstSuccess(responses) {
  const codes = Object.keys(responses).filter((c) => /^2\d\d$/.test(c)).map(Number).sort();
  return codes;
}

/**
 * Reads the spec and returns {spec, routes, ajv, findRoute, responseValidator}.
 * Every operation's request validator is compiled here, once.
 */
export function loadSpec(specPath = defaultSpecPath(), { optional = false } = {}) {
  if (optional && !existsSync(specPath)) return withoutSpec(specPath);
  const spec = JSON.parse(readFileSync(specPath, 'utf8'));
  const ajv = createAjv();
  const components = rewriteNullable(spec.components);
  ajv.addSchema({ $id: SPEC_ID, components });
  ajv.addSchema({ $id: REQUEST_SPEC_ID, components: closeAttributes(components) });
  const compile = (schema) => ajv.compile(absoluteRefs(rewriteNullable(schema), SPEC_ID));
  const compileRequest = (schema) => ajv.compile(absoluteRefs(closeAttributes(rewriteNullable(schema)), REQUEST_SPEC_ID));

  const routes = [];
  for (const [template, item] of Object.entries(spec.paths)) {
    const shared = item.parameters || [];
    const { regex, names } = templateToRegex(template);
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const params = [...shared, ...(op.parameters || [])];
      const security = op.security ?? spec.security ?? [];
      const body = op.requestBody?.content?.[JSON_API]?.schema;
      const successCodes = firstSuccess(op.responses);
      routes.push({
        method: method.toUpperCase(),
        template,
        regex,
        paramNames: names,
        operationId: op.operationId,
        isPublic: security.length === 0,
        successCodes,
        requiredQuery: params.filter((p) => p.in === 'query' && p.required).map((p) => p.name),
        requiredHeaders: params.filter((p) => p.in === 'header' && p.required).map((p) => p.name.toLowerCase()),
        bodyRequired: Boolean(op.requestBody?.required),
        bodySchemaName: body?.$ref?.split('/').pop() ?? null,
        validate: body ? compileRequest(body) : null,
      });
    }
  }

  const responseValidators = new Map();
  /** Validator for an operation's success response body (used by tests). */
  function responseValidator(operationId, status) {
    const key = `${operationId} ${status}`;
    if (!responseValidators.has(key)) {
      const op = routes.find((r) => r.operationId === operationId);
      const item = op && spec.paths[op.template][op.method.toLowerCase()];
      const schema = item?.responses?.[String(status)]?.content?.[JSON_API]?.schema;
      responseValidators.set(key, schema ? compile(schema) : null);
    }
    return responseValidators.get(key);
  }

  return { spec, routes, ajv, findRoute: routeFinder(routes), responseValidator, validating: true };
}

/** -> {route, params} | {methodMismatch: true} | null, over `routes`. */
function routeFinder(routes) {
  return function findRoute(method, pathname) {
    let pathMatched = false;
    for (const route of routes) {
      const m = route.regex.exec(pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params = Object.fromEntries(route.paramNames.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
      return { route, params };
    }
    return pathMatched ? { methodMismatch: true } : null;
  };
}

/**
 * The operations the emulator answers when the spec is not there (a clone without
 * ../shared): method, path, operationId, public or not, success statuses, required query
 * parameters. Our own table of what it answers, not a copy of the spec: bodies are not
 * validated then, which `validating: false` says.
 */
const OPERATIONS = [
  ['POST', '/client/events', 'create_client_event', true, [202]],
  ['POST', '/client/profiles', 'create_client_profile', true, [202]],
  ['POST', '/client/subscriptions', 'create_client_subscription', true, [202]],
  ['POST', '/client/event-bulk-create', 'bulk_create_client_events', true, [202]],
  ['POST', '/client/back-in-stock-subscriptions', 'create_client_back_in_stock_subscription', true, [202]],
  ['POST', '/api/events', 'create_event', false, [202]],
  ['POST', '/api/event-bulk-create-jobs', 'bulk_create_events', false, [202]],
  ['POST', '/api/profile-import', 'create_or_update_profile', false, [200, 201]],
  ['POST', '/api/profiles', 'create_profile', false, [201]],
  ['GET', '/api/profiles', 'get_profiles', false, [200]],
  ['PATCH', '/api/profiles/{id}', 'update_profile', false, [200]],
  ['POST', '/api/lists/{id}/relationships/profiles', 'add_profiles_to_list', false, [204]],
  ['POST', '/api/profile-subscription-bulk-create-jobs', 'bulk_subscribe_profiles', false, [202]],
  ['POST', '/api/webhooks', 'create_webhook', false, [201]],
  ['GET', '/api/campaigns', 'get_campaigns', false, [200], ['filter']],
  ['GET', '/api/flows', 'get_flows', false, [200]],
];

function withoutSpec(specPath) {
  const routes = OPERATIONS.map(([method, template, operationId, isPublic, successCodes, query = []]) => {
    const { regex, names } = templateToRegex(template);
    return {
      method, template, regex, paramNames: names, operationId, isPublic, successCodes,
      requiredQuery: isPublic ? ['company_id', ...query] : query,
      requiredHeaders: ['revision'],
      bodyRequired: method !== 'GET',
      bodySchemaName: null,
      validate: null,
    };
  });
  return {
    spec: null, routes, ajv: null, findRoute: routeFinder(routes), responseValidator: () => null,
    validating: false, missing: specPath,
  };
}
