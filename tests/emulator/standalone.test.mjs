// A clone without ../shared (where Klaviyo's OpenAPI subset lives, never copied here):
// `npm test` stops at once with one line naming the spec and KLAVIYO_OPENAPI, and the
// demo still runs, its emulator answering without validating and saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './spec.mjs';
import { startEmulator } from './server.mjs';
import { startDemo } from '../../www/serve.mjs';

const MISSING = path.join(repoRoot, 'target', 'no-such-openapi.json');

test('npm test without the spec stops at once with one line naming it and KLAVIYO_OPENAPI', () => {
  const r = spawnSync('bash', [path.join(repoRoot, '.ci/spec-check.sh')], {
    env: { ...process.env, KLAVIYO_OPENAPI: MISSING },
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /OpenAPI subset/);
  assert.ok(lines[0].includes(MISSING) && lines[0].includes('KLAVIYO_OPENAPI='));
  assert.equal(r.stdout, '');
  // With the spec (CI has it beside the repository), it passes.
  assert.equal(spawnSync('bash', [path.join(repoRoot, '.ci/spec-check.sh')]).status, 0);
});

test('without the spec the emulator answers like Klaviyo, unvalidated, and says so', async () => {
  const emu = await startEmulator({ port: 0, specPath: MISSING, requireSpec: false });
  try {
    const res = await fetch(`${emu.url}/client/events?company_id=AbC123`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.api+json', revision: '2026-07-15' },
      body: JSON.stringify({ data: { type: 'event', attributes: { properties: {} } } }),
    });
    assert.equal(res.status, 202);
    const admin = await (await fetch(`${emu.url}/__admin/requests`)).json();
    assert.match(admin.validation, /^off: no OpenAPI subset at /);
    assert.equal(admin.requests[0].operationId, 'create_client_event');
    // Without the company id, as Klaviyo answers.
    const bad = await fetch(`${emu.url}/client/events`, { method: 'POST', headers: { revision: '2026-07-15' }, body: '{}' });
    assert.equal(bad.status, 400);
  } finally {
    await emu.close();
  }
  // Required unless asked otherwise: the tests never run unvalidated.
  await assert.rejects(startEmulator({ port: 0, specPath: MISSING }), /ENOENT/);
});

test('npm run demo starts without the spec', async () => {
  const before = process.env.KLAVIYO_OPENAPI;
  process.env.KLAVIYO_OPENAPI = MISSING;
  let demo;
  try {
    demo = await startDemo({ port: 0, emulatorPort: 0 });
    assert.equal((await fetch(demo.url)).status, 200);
    const admin = await (await fetch(`${demo.emulator.url}/__admin/requests`)).json();
    assert.match(admin.validation, /^off/);
  } finally {
    if (before === undefined) delete process.env.KLAVIYO_OPENAPI;
    else process.env.KLAVIYO_OPENAPI = before;
    await demo?.close();
  }
});
