// Rules Klaviyo states in prose (descriptions, guides) rather than in the
// schemas. Each check returns a list of {pointer?, parameter?, detail}.

const REVISION = /^(\d{4})-(\d{2})-(\d{2})(\.[A-Za-z0-9_-]+)?$/;
const COMPANY_ID = /^[A-Za-z0-9]{6}$/;
const E164 = /^\+[1-9]\d{6,14}$/;
// Deliberately loose: Klaviyo rejects obviously broken addresses, not exotic ones.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const IDENTIFIERS = ['email', 'phone_number', 'external_id', 'anonymous_id', '_kx'];
export const MAX_BULK_EVENTS = 1000;

const present = (v) => typeof v === 'string' && v.trim() !== '';

export function checkRevision(value) {
  if (value === undefined) return [{ parameter: 'revision', detail: "Missing required header 'revision' (format: YYYY-MM-DD[.suffix])" }];
  const m = REVISION.exec(value);
  const date = m && new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  if (!m || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== `${m[1]}-${m[2]}-${m[3]}`) {
    return [{ parameter: 'revision', detail: "Invalid 'revision' header; expected format YYYY-MM-DD[.suffix]" }];
  }
  return [];
}

export function checkCompanyId(value) {
  if (value === undefined || value === '') return [{ parameter: 'company_id', detail: "Missing required query parameter 'company_id'" }];
  if (!COMPANY_ID.test(value)) return [{ parameter: 'company_id', detail: "Invalid 'company_id'; expected a 6 character public API key" }];
  return [];
}

/** -> {ok, key} ; key is only returned to be hashed, never stored. */
export function parseAuthorization(header) {
  if (header === undefined) return { ok: false, missing: true };
  const m = /^Klaviyo-API-Key\s+(\S+)\s*$/.exec(header);
  return m ? { ok: true, key: m[1] } : { ok: false, missing: false };
}

export function contentTypeOk(contentType) {
  const base = (contentType || '').split(';')[0].trim().toLowerCase();
  return base === 'application/vnd.api+json' || base === 'application/json';
}

// Identifier and format rules for one profile resource object ({type, id?, attributes}).
function checkProfile(profileData, pointer, { identifiers = IDENTIFIERS, allowId = true, requireOneOf = null } = {}) {
  const errors = [];
  if (!profileData || typeof profileData !== 'object') return errors; // the schema reports it
  const attrs = profileData.attributes && typeof profileData.attributes === 'object' ? profileData.attributes : {};
  const needed = requireOneOf || identifiers;
  const hasOne = needed.some((k) => present(attrs[k])) || (!requireOneOf && allowId && present(profileData.id));
  if (!hasOne) {
    errors.push({
      pointer: `${pointer}/attributes`,
      detail: `A profile identifier is required: one of ${[...(allowId && !requireOneOf ? ['id'] : []), ...needed].join(', ')}`,
    });
  }
  if (present(attrs.email) && !EMAIL.test(attrs.email)) {
    errors.push({ pointer: `${pointer}/attributes/email`, detail: 'Invalid email address' });
  }
  if (present(attrs.phone_number) && !E164.test(attrs.phone_number)) {
    errors.push({ pointer: `${pointer}/attributes/phone_number`, detail: 'Invalid phone number; expected E.164 format such as +15005550006' });
  }
  return errors;
}

// Klaviyo: "The time must be after the year 1990 and can only be up to 1 year in the future."
function checkEventTime(time, pointer, now) {
  if (typeof time !== 'string') return [];
  const t = Date.parse(time);
  if (Number.isNaN(t)) return []; // the format check reports it
  if (t < Date.UTC(1990, 0, 1) || t > now + 366 * 24 * 3600 * 1000) {
    return [{ pointer, detail: 'Event time must be after 1990 and at most 1 year in the future' }];
  }
  return [];
}

function checkEventAttributes(attrs, pointer, now) {
  if (!attrs || typeof attrs !== 'object') return [];
  return checkEventTime(attrs.time, `${pointer}/time`, now);
}

const asArray = (v) => (Array.isArray(v) ? v : []);

function checkBulkEntry(attrs, pointer, now, { rejectDuplicateIds }) {
  const errors = checkProfile(attrs?.profile?.data, `${pointer}/profile/data`);
  const events = asArray(attrs?.events?.data);
  const seen = new Map();
  events.forEach((ev, i) => {
    const at = `${pointer}/events/data/${i}/attributes`;
    errors.push(...checkEventAttributes(ev?.attributes, at, now));
    // Not in the schema, but an event that carries its own profile must identify it too.
    if (ev?.attributes?.profile?.data) errors.push(...checkProfile(ev.attributes.profile.data, `${at}/profile/data`));
    const uid = ev?.attributes?.unique_id;
    if (rejectDuplicateIds && present(uid)) {
      if (seen.has(uid)) {
        errors.push({ pointer: `${at}/unique_id`, detail: `Duplicate unique_id in request (also used by event ${seen.get(uid)})` });
      } else seen.set(uid, i);
    }
  });
  return { errors, count: events.length };
}

/** Prose rules per operation, run after the schema validated the body. */
export function proseChecks(operationId, body, now = Date.now()) {
  const data = body?.data;
  const attrs = data?.attributes;
  switch (operationId) {
    case 'create_client_event':
    case 'create_event':
      return [
        ...checkProfile(attrs?.profile?.data, '/data/attributes/profile/data'),
        ...checkEventAttributes(attrs, '/data/attributes', now),
      ];
    case 'create_client_profile':
    case 'create_or_update_profile':
      return checkProfile(data, '/data');
    case 'create_profile':
      return checkProfile(data, '/data', { allowId: false, identifiers: ['email', 'phone_number', 'external_id'] });
    case 'update_profile':
      return []; // identified by the path id
    case 'create_client_subscription':
      // "One of either `email` or `phone_number` must be provided."
      return checkProfile(attrs?.profile?.data, '/data/attributes/profile/data', { requireOneOf: ['email', 'phone_number'] });
    case 'create_client_back_in_stock_subscription': {
      const errors = checkProfile(attrs?.profile?.data, '/data/attributes/profile/data', { identifiers: ['email', 'phone_number', 'external_id'] });
      if (Array.isArray(attrs?.channels) && attrs.channels.length === 0) {
        errors.push({ pointer: '/data/attributes/channels', detail: 'At least one channel is required' });
      }
      // "integrationType:::catalogId:::externalId", e.g. $custom:::$default:::SKU-1
      const variant = data?.relationships?.variant?.data?.id;
      if (typeof variant === 'string' && !/^[^:]+:::[^:]+:::.+$/.test(variant)) {
        errors.push({ pointer: '/data/relationships/variant/data/id', detail: 'Variant id must look like integrationType:::catalogId:::externalId' });
      }
      return errors;
    }
    case 'bulk_subscribe_profiles':
      // "Either email or phone number is required."
      return asArray(attrs?.profiles?.data).flatMap((p, i) =>
        checkProfile(p, `/data/attributes/profiles/data/${i}`, { requireOneOf: ['email', 'phone_number'] }));
    case 'bulk_create_client_events': {
      // "a repeated unique_id fails the whole request"; at most 1000 events.
      const { errors, count } = checkBulkEntry(attrs, '/data/attributes', now, { rejectDuplicateIds: true });
      if (count > MAX_BULK_EVENTS) errors.push({ pointer: '/data/attributes/events/data', detail: `At most ${MAX_BULK_EVENTS} events per request (got ${count})` });
      if (count === 0) errors.push({ pointer: '/data/attributes/events/data', detail: 'At least one event is required' });
      return errors;
    }
    case 'bulk_create_events': {
      const entries = asArray(attrs?.['events-bulk-create']?.data);
      let total = 0;
      const errors = [];
      entries.forEach((entry, i) => {
        const r = checkBulkEntry(entry?.attributes, `/data/attributes/events-bulk-create/data/${i}/attributes`, now, { rejectDuplicateIds: false });
        errors.push(...r.errors);
        total += r.count;
      });
      if (total > MAX_BULK_EVENTS) errors.push({ pointer: '/data/attributes/events-bulk-create/data', detail: `At most ${MAX_BULK_EVENTS} events per request (got ${total})` });
      return errors;
    }
    default:
      return [];
  }
}

/** The unique_id values a body sends, in order (duplicates kept). */
export function extractUniqueIds(operationId, body) {
  const attrs = body?.data?.attributes;
  const ids = [];
  const add = (ev) => { if (typeof ev?.attributes?.unique_id === 'string') ids.push(ev.attributes.unique_id); };
  switch (operationId) {
    case 'create_client_event':
    case 'create_event':
      add(body?.data);
      break;
    case 'bulk_create_client_events':
      asArray(attrs?.events?.data).forEach(add);
      break;
    case 'bulk_create_events':
      asArray(attrs?.['events-bulk-create']?.data).forEach((e) => asArray(e?.attributes?.events?.data).forEach(add));
      break;
    default:
  }
  return ids;
}
