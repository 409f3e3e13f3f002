// Minimal valid request bodies, written from the spec schemas; reusable by
// any test. Use sample(name) to get a fresh copy you may mutate.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './spec.mjs';

export const REVISION = '2026-07-15';
export const COMPANY_ID = 'AbC123';
export const PRIVATE_KEY = 'pk_emulator_test_key_0000000000000000';
export const EMAIL = 'sarah.mason@klaviyo-demo.com';

const profile = (attributes = { email: EMAIL }) => ({ data: { type: 'profile', attributes } });
const metric = (name) => ({ data: { type: 'metric', attributes: { name } } });

/** One event resource for the bulk endpoints (no profile: the entry has one). */
export const bulkEvent = (name = 'Viewed Product', extra = {}) => ({
  type: 'event',
  attributes: { properties: {}, metric: metric(name), ...extra },
});

const bodies = {
  // POST /client/events and POST /api/events (schema EventCreateQueryV2)
  clientEvent: {
    data: { type: 'event', attributes: { properties: {}, metric: metric('Viewed Product'), profile: profile() } },
  },
  apiEvent: {
    data: { type: 'event', attributes: { properties: {}, metric: metric('Placed Order'), profile: profile() } },
  },
  // POST /client/profiles (OnsiteProfileCreateQuery)
  clientProfile: { data: { type: 'profile', attributes: { email: EMAIL } } },
  // POST /client/subscriptions (OnsiteSubscriptionCreateQuery): the list
  // relationship is required; without `subscriptions` Klaviyo defaults to marketing.
  clientSubscription: {
    data: {
      type: 'subscription',
      attributes: {
        profile: profile({ email: EMAIL, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }),
      },
      relationships: { list: { data: { type: 'list', id: 'Y6nRLr' } } },
    },
  },
  // POST /client/back-in-stock-subscriptions (ClientBISSubscriptionCreateQuery)
  backInStock: {
    data: {
      type: 'back-in-stock-subscription',
      attributes: { channels: ['EMAIL'], profile: profile() },
      relationships: { variant: { data: { type: 'catalog-variant', id: '$custom:::$default:::SKU-1' } } },
    },
  },
  // POST /client/event-bulk-create (EventsBulkCreateQuery): one profile, many events.
  bulkClientEvents: {
    data: {
      type: 'event-bulk-create',
      attributes: {
        profile: profile(),
        events: { data: [bulkEvent('Viewed Product', { unique_id: 'bulk-1' }), bulkEvent('Added to Cart', { unique_id: 'bulk-2' })] },
      },
    },
  },
  // POST /api/event-bulk-create-jobs (EventsBulkCreateJob): many profiles, each with events.
  bulkEventsJob: {
    data: {
      type: 'event-bulk-create-job',
      attributes: {
        'events-bulk-create': {
          data: [{
            type: 'event-bulk-create',
            attributes: { profile: profile(), events: { data: [bulkEvent('Placed Order', { unique_id: 'job-1' })] } },
          }],
        },
      },
    },
  },
  // POST /api/profile-import (ProfileUpsertQuery)
  profileImport: { data: { type: 'profile', attributes: { email: EMAIL } } },
  // POST /api/profiles (ProfileCreateQuery)
  createProfile: { data: { type: 'profile', attributes: { email: 'new.person@klaviyo-demo.com' } } },
  // PATCH /api/profiles/{id} (ProfilePartialUpdateQuery): data.id must equal the path id.
  updateProfile: (id) => ({ data: { type: 'profile', id, attributes: { first_name: 'Sarah' } } }),
  // POST /api/profile-subscription-bulk-create-jobs (SubscriptionCreateJobCreateQuery):
  // `subscriptions` is required per profile; the list relationship is optional.
  bulkSubscribe: {
    data: {
      type: 'profile-subscription-bulk-create-job',
      attributes: {
        profiles: {
          data: [{ type: 'profile', attributes: { email: EMAIL, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } } }],
        },
      },
      relationships: { list: { data: { type: 'list', id: 'Y6nRLr' } } },
    },
  },
  // POST /api/lists/{id}/relationships/profiles (ListMembersAddQuery): profile ids only.
  addToList: { data: [{ type: 'profile', id: '01GDDKASAP8TKDDA2GRZDSVP4H' }] },
  // POST /api/webhooks (WebhookCreateQuery)
  createWebhook: {
    data: {
      type: 'webhook',
      attributes: { name: 'Test hook', endpoint_url: 'https://example.com/hook', secret_key: 'shh' },
      relationships: { 'webhook-topics': { data: [{ type: 'webhook-topic', id: 'event:klaviyo.sent_sms' }] } },
    },
  },
};

/** A fresh, mutable copy of a named body (functions are called with args). */
export function sample(name, ...args) {
  const b = bodies[name];
  if (b === undefined) throw new Error(`no fixture ${name}`);
  return typeof b === 'function' ? b(...args) : structuredClone(b);
}

export const fixtureNames = Object.keys(bodies);

/** Where each fixture goes: [method, path, name]. Public paths get ?company_id. */
export const endpoints = {
  clientEvent: ['POST', '/client/events'],
  clientProfile: ['POST', '/client/profiles'],
  clientSubscription: ['POST', '/client/subscriptions'],
  backInStock: ['POST', '/client/back-in-stock-subscriptions'],
  bulkClientEvents: ['POST', '/client/event-bulk-create'],
  apiEvent: ['POST', '/api/events'],
  bulkEventsJob: ['POST', '/api/event-bulk-create-jobs'],
  profileImport: ['POST', '/api/profile-import'],
  createProfile: ['POST', '/api/profiles'],
  bulkSubscribe: ['POST', '/api/profile-subscription-bulk-create-jobs'],
  addToList: ['POST', '/api/lists/Y6nRLr/relationships/profiles'],
  createWebhook: ['POST', '/api/webhooks'],
};

/** The shared examples (../shared/klaviyo-openapi/examples), by operationId. */
export function sharedExamples() {
  const dir = process.env.KLAVIYO_OPENAPI
    ? path.join(path.dirname(process.env.KLAVIYO_OPENAPI), 'examples')
    : path.resolve(repoRoot, '../shared/klaviyo-openapi/examples');
  const read = (n) => JSON.parse(readFileSync(path.join(dir, `${n}.json`), 'utf8'));
  return {
    create_client_event: read('create_client_event'),
    create_client_profile: read('create_client_profile'),
    create_event: read('create_event'),
  };
}

/** Headers for a /client request (no Authorization: public endpoints). */
export function clientHeaders({ revision = REVISION, contentType = 'application/vnd.api+json' } = {}) {
  const h = { accept: 'application/vnd.api+json' };
  if (revision !== null) h.revision = revision;
  if (contentType !== null) h['content-type'] = contentType;
  return h;
}

/** Headers for an /api request: the client headers plus the private key. */
export function apiHeaders({ key = PRIVATE_KEY, ...rest } = {}) {
  const h = clientHeaders(rest);
  if (key !== null) h.authorization = `Klaviyo-API-Key ${key}`;
  return h;
}
