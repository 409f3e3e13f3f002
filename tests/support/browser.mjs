// Shared by the Chromium suites: how to launch Debian's Chromium here, and polling with
// a deadline (never a fixed sleep to wait for async work).
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

// Root needs --no-sandbox; without the background-networking flags Chromium keeps
// trying to reach the internet, which this machine refuses.
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** `launchOptions`: more of Playwright's, such as `ignoreDefaultArgs`. */
export function launchChromium(extraArgs = [], launchOptions = {}) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], ...launchOptions });
}

/**
 * Chromium started directly, without Playwright (which attaches DevTools, and so turns
 * prerendering off, and keeps every page visible, so none can be frozen): a fresh
 * profile (`dir`), in a process group of its own. `close()` ends it, its children with
 * it, and removes the profile.
 */
export async function spawnChromium(extraArgs = [], url = 'about:blank') {
  const dir = await mkdtemp(path.join(tmpdir(), 'kw-chromium-'));
  const proc = spawn(CHROMIUM, [...CHROMIUM_ARGS, `--user-data-dir=${dir}`, ...extraArgs, url],
    { stdio: 'ignore', detached: true });
  return {
    dir,
    async close() {
      const exited = new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* already gone */ }
      await exited;
      await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  };
}

/**
 * The user agent of Chromium as a shopper runs it: headless Chromium says
 * `HeadlessChrome`, which the edge worker (rightly) takes for a bot and drops. Suites
 * whose pages send through the worker open their contexts with this.
 */
export function shopperUserAgent(browser) {
  const major = String(browser.version()).split('.')[0] || '131';
  return `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns a truthy value (returned); throws after `timeout` ms. */
export async function waitFor(fn, { timeout = 10_000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await pause(interval);
  }
}

/** Content types for the test pages' static servers. */
export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.ts': 'text/plain; charset=utf-8',
};
