// The deployment the README gives: `wrangler deploy --config js/edge/wrangler.toml`, run
// for real with --dry-run (wrangler builds the upload and stops before it needs an
// account). durable.test.mjs runs the file's queue and Durable Object tables in Miniflare;
// this shows wrangler itself takes the file: as shipped, and with every optional line a
// shop is told to fill in uncommented where it stands.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHIPPED = path.join(ROOT, 'js/edge/wrangler.toml');
const WRANGLER = path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js');

/** `wrangler deploy --dry-run` on a config; its exit code and what it printed. */
function dryRun(config, t) {
  const out = mkdtempSync(path.join(tmpdir(), 'wrangler-out-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  return new Promise((resolve) => {
    execFile(process.execPath, [WRANGLER, 'deploy', '--config', config, '--dry-run', '--outdir', out], {
      cwd: ROOT,
      timeout: 120_000,
      // No account, no telemetry: nothing leaves the machine but wrangler's update check.
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_API_TOKEN: '', NO_COLOR: '1', FORCE_COLOR: '0' },
    }, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, text: `${stdout}\n${stderr}` }));
  });
}

/** The shipped file with each commented `key = value` or `[[table]]` line made live. */
function everyOptionOn() {
  return readFileSync(SHIPPED, 'utf8')
    .split('\n')
    .map((l) => (/^# (\[\[[a-z_.]+\]\]|[A-Za-z_]+ = )/.test(l) ? l.slice(2) : l))
    .join('\n');
}

test('wrangler deploys js/edge/wrangler.toml as shipped: the worker, its wasm, the script-tag files and every binding', { timeout: 180_000 }, async (t) => {
  const { code, text } = await dryRun(SHIPPED, t);
  assert.equal(code, 0, text);
  assert.doesNotMatch(text, /ERROR|WARNING/, 'wrangler neither refuses nor warns about a rule');
  for (const [file, type] of [['klaviyo_edge_bg.wasm', 'compiled-wasm'], ['script/klaviyo-wasm.js.txt', 'text'], ['script/snippet.min.js.txt', 'text'], ['script/klaviyo_wasm_bg.wasm.bin', 'buffer']]) {
    assert.match(text, new RegExp(`${file.replace(/\./g, '\\.')}\\s*│\\s*${type}`), `${file} uploaded as ${type}`);
  }
  for (const binding of ['REPLAY_GUARD (ReplayGuard)', 'DELIVERY_QUEUE (klaviyo-deliveries)', 'DELIVERY_DEAD_LETTERS (klaviyo-deliveries-dead)', 'DEAD_LETTER_STORE', 'KLAVIYO_PUBLIC_KEY', 'ROUTE_PREFIX']) {
    assert.ok(text.includes(`env.${binding}`), `binds ${binding}`);
  }
});

test('wrangler.toml: every optional line uncommented where it stands lands where it belongs (the route top-level, not in a table), and wrangler takes it', { timeout: 180_000 }, async (t) => {
  const text = everyOptionOn();
  const config = parseToml(text);
  assert.deepEqual(JSON.parse(JSON.stringify(config.routes ?? null)), [{ pattern: 'shop.example/klaviyo/*', zone_name: 'shop.example' }], 'routes is a top-level key');
  assert.equal(config.migrations.length, 1);
  assert.deepEqual(Object.keys(config.migrations[0]).sort(), ['new_sqlite_classes', 'tag'], 'nothing fell into [[migrations]]');
  assert.equal(config.kv_namespaces?.[0]?.binding, 'REPLAY_KV');
  assert.equal(config.ratelimits?.[0]?.name, 'BROWSER_RATE_LIMITER', 'the rate limiter in the current [[ratelimits]] form');
  for (const k of ['FORWARD_VISITOR_IP', 'FILTER_BOTS', 'SERVE_SCRIPT', 'ALLOW_NULL_ORIGIN', 'WEBHOOK_FORWARD_URL']) assert.ok(k in config.vars, `${k} under [vars]`);
  const dir = mkdtempSync(path.join(ROOT, 'js/edge/.wrangler-optional-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'wrangler.toml');
  writeFileSync(file, text.replace('main = "../../dist/edge/worker.mjs"', 'main = "../../../dist/edge/worker.mjs"'));
  const run = await dryRun(file, t);
  assert.equal(run.code, 0, run.text);
  assert.doesNotMatch(run.text, /ERROR|WARNING/, 'no warning about an unexpected field or an experimental table');
  for (const binding of ['REPLAY_KV', 'BROWSER_RATE_LIMITER']) assert.ok(run.text.includes(`env.${binding}`), `binds ${binding}`);
});
