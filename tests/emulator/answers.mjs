// Bodies the emulator answers with: JSON:API errors and plausible success
// documents, plus a tiny in-memory profile store so profile-import can tell
// "created" (201) from "updated" (200) the way Klaviyo does.
import { randomUUID, randomInt } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID-shaped id like Klaviyo's (01GDDKASAP8TKDDA2GRZDSVP4H). */
export function klaviyoId(now = Date.now()) {
  let time = '';
  for (let t = now, i = 0; i < 10; i += 1, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  let rand = '';
  for (let i = 0; i < 16; i += 1) rand += CROCKFORD[randomInt(32)];
  return time + rand;
}

const TITLES = {
  400: ['invalid', 'Invalid input.'],
  401: ['not_authenticated', 'Authentication credentials were not provided.'],
  403: ['permission_denied', 'You do not have permission to perform this action.'],
  404: ['not_found', 'Not found.'],
  405: ['method_not_allowed', 'Method not allowed.'],
  409: ['conflict', 'Conflict.'],
  413: ['request_too_large', 'Request entity too large.'],
  415: ['unsupported_media_type', 'Unsupported media type.'],
  429: ['throttled', 'Request was throttled.'],
};

/** One JSON:API error object; `source` gets a pointer or a parameter. */
export function errorObject(status, { detail, pointer, parameter, code, title, meta } = {}) {
  const [defCode, defTitle] = TITLES[status] || (status >= 500 ? ['error', 'A server error occurred.'] : ['error', 'Request failed.']);
  const err = { id: randomUUID(), status, code: code || defCode, title: title || defTitle, detail: detail || title || defTitle };
  if (pointer !== undefined) err.source = { pointer };
  else if (parameter !== undefined) err.source = { parameter };
  if (meta) err.meta = meta;
  return err;
}

export const errorDocument = (status, problems) => ({
  errors: (problems.length ? problems : [{}]).map((p) => errorObject(status, p)),
});

const PROFILE_FIELDS = ['email', 'phone_number', 'external_id', 'first_name', 'last_name', 'organization', 'locale', 'title', 'image'];
const MATCH_FIELDS = ['email', 'phone_number', 'external_id'];

export class ProfileStore {
  constructor() { this.byId = new Map(); }

  reset() { this.byId.clear(); }

  find(attrs = {}, id = null) {
    if (id && this.byId.has(id)) return this.byId.get(id);
    for (const p of this.byId.values()) {
      if (MATCH_FIELDS.some((f) => typeof attrs[f] === 'string' && attrs[f] !== '' && p.attributes[f] === attrs[f])) return p;
    }
    return null;
  }

  // "setting a field to null will clear out the field, whereas not including
  // a field in your request will leave it unchanged."
  static merge(profile, attrs = {}) {
    const now = new Date().toISOString();
    for (const f of PROFILE_FIELDS) if (f in attrs) profile.attributes[f] = attrs[f];
    if ('location' in attrs) profile.attributes.location = attrs.location === null ? {} : { ...profile.attributes.location, ...attrs.location };
    if ('properties' in attrs) profile.attributes.properties = attrs.properties === null ? {} : { ...profile.attributes.properties, ...attrs.properties };
    profile.attributes.updated = now;
    return profile;
  }

  create(attrs, id = klaviyoId()) {
    const now = new Date().toISOString();
    const profile = {
      id,
      attributes: {
        ...Object.fromEntries(PROFILE_FIELDS.map((f) => [f, null])),
        created: now, updated: now, last_event_date: null, location: {}, properties: {},
      },
    };
    ProfileStore.merge(profile, attrs);
    this.byId.set(id, profile);
    return profile;
  }

  /** -> {profile, created} */
  upsert(attrs, id) {
    const existing = this.find(attrs, id);
    if (existing) return { profile: ProfileStore.merge(existing, attrs), created: false };
    return { profile: this.create(attrs, id || undefined), created: true };
  }

  list() { return [...this.byId.values()]; }
}

function profileResource(profile, base) {
  return {
    type: 'profile',
    id: profile.id,
    attributes: structuredClone(profile.attributes),
    links: { self: `${base}/api/profiles/${profile.id}/` },
  };
}

const single = (resource) => ({ data: resource, links: { self: resource.links.self } });

// Tiny subset of Klaviyo's filter syntax: equals(field,"value") on identifiers.
function profileFilter(filter) {
  const m = /^equals\((email|phone_number|external_id|id),\s*["']([^"']*)["']\)$/.exec(filter || '');
  if (!m) return () => true;
  return (p) => (m[1] === 'id' ? p.id === m[2] : p.attributes[m[1]] === m[2]);
}

/**
 * The success answer for a validated request: {status, body|null} or an
 * error answer {status, errors} (404/409 that need state to decide).
 */
export function successAnswer({ route, params, body, query, base, profiles }) {
  const attrs = body?.data?.attributes;
  switch (route.operationId) {
    case 'create_or_update_profile': {
      const { profile, created } = profiles.upsert(attrs, body.data.id);
      return { status: created ? 201 : 200, body: single(profileResource(profile, base)) };
    }
    case 'create_profile': {
      const dup = profiles.find(attrs);
      if (dup) {
        return {
          status: 409,
          errors: [{ code: 'duplicate_profile', detail: 'A profile already exists with one of these identifiers.', pointer: '/data/attributes', meta: { duplicate_profile_id: dup.id } }],
        };
      }
      return { status: 201, body: single(profileResource(profiles.create(attrs), base)) };
    }
    case 'update_profile': {
      if (body.data.id !== params.id) {
        return { status: 409, errors: [{ detail: 'The id in the body does not match the id in the URL.', pointer: '/data/id' }] };
      }
      const profile = profiles.find({}, params.id);
      if (!profile) return { status: 404, errors: [{ detail: `Profile ${params.id} does not exist.` }] };
      return { status: 200, body: single(profileResource(ProfileStore.merge(profile, attrs), base)) };
    }
    case 'get_profiles': {
      const data = profiles.list().filter(profileFilter(query.filter)).map((p) => profileResource(p, base));
      return { status: 200, body: { data, links: { self: `${base}/api/profiles/` } } };
    }
    case 'get_campaigns':
    case 'get_flows':
      return { status: 200, body: { data: [], links: { self: `${base}${route.template}/` } } };
    case 'create_webhook': {
      const id = klaviyoId();
      const now = new Date().toISOString();
      return {
        status: 201,
        body: single({
          type: 'webhook',
          id,
          attributes: { name: attrs.name, description: null, endpoint_url: attrs.endpoint_url, enabled: true, created_at: now, updated_at: now },
          relationships: { 'webhook-topics': { data: body.data.relationships['webhook-topics'].data ?? [] } },
          links: { self: `${base}/api/webhooks/${id}/` },
        }),
      };
    }
    default:
      // 202 (accepted, processed later) and 204 answer without a body.
      return { status: route.successCodes[0], body: null };
  }
}
