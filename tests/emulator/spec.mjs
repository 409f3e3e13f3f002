// Loads the Klaviyo OpenAPI subset (never copied into the project) and builds
// the route table plus one compiled request validator per operation.
import { readFileSync } from 'node:fs';
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

// Operation schemas live outside the components document: point their local
// refs at it.
function absoluteRefs(node) {
  if (Array.isArray(node)) return node.map(absoluteRefs);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? SPEC_ID + v : absoluteRefs(v);
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

/** Ajv errors -> [{pointer, detail}] with the nullable-wrapper noise removed. */
export function describeErrors(errors = []) {
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
export function loadSpec(specPath = defaultSpecPath()) {
  const spec = JSON.parse(readFileSync(specPath, 'utf8'));
  const ajv = createAjv();
  ajv.addSchema({ $id: SPEC_ID, components: rewriteNullable(spec.components) });
  const compile = (schema) => ajv.compile(absoluteRefs(rewriteNullable(schema)));

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
        validate: body ? compile(body) : null,
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

  /** -> {route, params} | {methodMismatch: true} | null */
  function findRoute(method, pathname) {
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
  }

  return { spec, routes, ajv, findRoute, responseValidator };
}
