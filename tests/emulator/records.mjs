// What the emulator saw. Keys are never stored: only their sha256.
import { createHash } from 'node:crypto';

export const sha256 = (s) => createHash('sha256').update(s).digest('hex');

/** Lowercased headers with the Authorization value masked after its scheme. */
export function maskHeaders(rawHeaders) {
  const headers = {};
  for (const [name, value] of Object.entries(rawHeaders)) {
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (headers.authorization !== undefined) {
    const scheme = /^(\S+)\s+\S/.exec(headers.authorization);
    headers.authorization = scheme ? `${scheme[1]} ***` : '***';
  }
  return headers;
}

export function queryObject(searchParams) {
  const query = {};
  for (const [k, v] of searchParams) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  return query;
}

export class RecordStore {
  constructor() { this.reset(); }

  reset() {
    this.items = [];
    this.preflights = [];
    this.seq = 0;
  }

  add(record) {
    const r = {
      seq: ++this.seq,
      at: Date.now(),
      ...record,
      status: null, // set when answered; stays null for dropped requests
      pending: true, // until answered or dropped (held requests stay pending)
      accepted: false,
      errors: [],
      fault: null,
      uniqueIds: [],
    };
    this.items.push(r);
    return r;
  }

  addPreflight(p) {
    this.preflights.push({ seq: ++this.seq, at: Date.now(), ...p });
  }

  /**
   * Filters: path (exact), pathPrefix, accepted, operationId, method, status, since (seq),
   * companyId (the `company_id` query parameter: one shop's calls).
   */
  list(filter = {}) {
    return this.items.filter((r) =>
      (filter.path === undefined || r.path === filter.path) &&
      (filter.companyId === undefined || r.query?.company_id === filter.companyId) &&
      (filter.pathPrefix === undefined || r.path.startsWith(filter.pathPrefix)) &&
      (filter.accepted === undefined || r.accepted === filter.accepted) &&
      (filter.operationId === undefined || r.operationId === filter.operationId) &&
      (filter.method === undefined || r.method === filter.method.toUpperCase()) &&
      (filter.status === undefined || r.status === Number(filter.status)) &&
      (filter.since === undefined || r.seq > Number(filter.since)));
  }

  summary(filter = {}) {
    const requests = this.list(filter);
    const uniqueIdCounts = {};
    for (const r of requests) {
      if (!r.accepted) continue;
      for (const id of r.uniqueIds) uniqueIdCounts[id] = (uniqueIdCounts[id] || 0) + 1;
    }
    const counts = Object.values(uniqueIdCounts);
    const accepted = requests.filter((r) => r.accepted).length;
    return {
      requests,
      count: requests.length,
      accepted,
      // Everything that ended without a 2xx, dropped connections included.
      rejected: requests.filter((r) => !r.pending && !r.accepted).length,
      pending: requests.filter((r) => r.pending).length,
      acceptedUniqueIds: counts.length,
      duplicateUniqueIds: counts.filter((n) => n > 1).length,
      uniqueIdCounts,
      preflights: this.preflights,
    };
  }
}
