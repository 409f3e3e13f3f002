// The three engines of the matrix, each driven over W3C WebDriver by selenium-webdriver:
//   chromium  Debian's /usr/bin/chromium through chromedriver (chromium-driver)
//   firefox   Firefox ESR (firefox-esr) through geckodriver (`cargo install geckodriver`)
//   webkit    WebKitGTK's MiniBrowser through WebKitWebDriver (webkit2gtk-driver), on a
//             private Xvfb display: WebKitGTK 2.50's MiniBrowser has no headless mode
//             (without a display it exits "cannot open display" and the session hangs).
// We start every driver ourselves (its own process group, killed by id when done), so
// selenium never looks for drivers on the network. Each engine also says how, if at all,
// WebDriver can take its pages offline.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Builder } from 'selenium-webdriver';
import { CHROMIUM_ARGS, waitFor } from '../support/browser.mjs';
import { ROOT } from './site.mjs';

const LOG_DIR = path.join(ROOT, 'target/engines');

/** The first executable among `candidates` (absolute paths or names on PATH). */
function which(...candidates) {
  for (const c of candidates.filter(Boolean)) {
    if (c.includes('/')) {
      if (existsSync(c)) return c;
      continue;
    }
    for (const dir of (process.env.PATH || '').split(':')) {
      const p = path.join(dir, c);
      if (dir && existsSync(p)) return p;
    }
  }
  return null;
}

function version(bin, args = ['--version']) {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
  } catch {
    return '?';
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A process of ours in its own group: `stop()` ends the group (the browser with it). */
function startProcess(cmd, args, { env = process.env, log, fds = [] } = {}) {
  mkdirSync(LOG_DIR, { recursive: true });
  const out = openSync(path.join(LOG_DIR, log), 'w');
  const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', out, out, ...fds] });
  closeSync(out);
  let failed = null;
  const exited = new Promise((resolve) => {
    child.once('exit', resolve);
    child.once('error', (e) => { failed = e; resolve(); }); // could not start at all
  });
  return {
    child,
    exited,
    gone: () => failed !== null || child.exitCode !== null || child.signalCode !== null,
    async stop() {
      if (!child.pid || failed || child.exitCode !== null || child.signalCode !== null) return;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A WebDriver server on a free port, once its /status answers. */
async function startDriver(name, bin, args, env) {
  const port = await freePort();
  const proc = startProcess(bin, args(port), { env, log: `${name}-driver.log` });
  const url = `http://127.0.0.1:${port}`;
  try {
    const state = await waitFor(async () => {
      if (proc.gone()) return 'exited';
      const r = await fetch(`${url}/status`);
      return r.status === 200 && 'up';
    }, { timeout: 15_000, interval: 50, what: `${path.basename(bin)} to listen` });
    if (state === 'exited') throw new Error(`${path.basename(bin)} exited with ${proc.child.exitCode ?? proc.child.signalCode} (see target/engines/${name}-driver.log)`);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { url, proc };
}

/** A private X display for WebKitGTK: Xvfb picks a free number and tells us on fd 3. */
async function startXvfb(bin) {
  const proc = startProcess(bin, ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { log: 'xvfb.log', fds: ['pipe'] });
  let text = '';
  const display = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Xvfb did not report a display within 10 s')), 10_000);
    proc.child.stdio[3].on('data', (d) => {
      text += d;
      if (text.includes('\n')) { clearTimeout(timer); resolve(`:${text.trim()}`); }
    });
    proc.exited.then(() => { clearTimeout(timer); reject(new Error('Xvfb exited (see target/engines/xvfb.log)')); });
  });
  return { display, proc };
}

/** A raw WebDriver command (for vendor endpoints selenium's generic driver lacks). */
async function command(driverUrl, sessionId, method, route, body) {
  const r = await fetch(`${driverUrl}/session/${sessionId}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${method} ${route}: ${r.status} ${json?.value?.error || ''} ${json?.value?.message || ''}`.trim());
  return json.value;
}

/** Creates the session, with a deadline (a browser that cannot start makes drivers wait long). */
async function newSession(driverUrl, capabilities, timeout = 60_000) {
  const driver = new Builder().usingServer(driverUrl).withCapabilities(capabilities).build();
  let timer;
  const caps = await Promise.race([
    driver.getCapabilities(),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no session within ${timeout / 1000} s`)), timeout); }),
  ]).finally(() => clearTimeout(timer));
  const session = await driver.getSession();
  return { driver, caps, sessionId: session.getId() };
}

/**
 * Opens an engine's session on processes it starts (its driver, Xvfb), each handed to
 * `own` as it starts: if opening fails they are stopped, and the session's quit() ends
 * the session, then them, last started first.
 */
async function ownedSession(open) {
  const procs = [];
  const stopAll = async () => { for (const p of procs.reverse()) await p.stop(); };
  try {
    const session = await open((proc) => procs.push(proc));
    return {
      ...session,
      async quit() {
        await session.driver.quit().catch(() => {});
        await stopAll();
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

const home = os.homedir();

export const ENGINES = {
  chromium: {
    name: 'chromium',
    find() {
      const browser = which(process.env.CHROMIUM_PATH, '/usr/bin/chromium', 'chromium', 'chromium-browser');
      const driver = which(process.env.CHROMEDRIVER, '/usr/bin/chromedriver', 'chromedriver');
      if (!browser) return { ok: false, reason: 'no chromium binary (apt-get install chromium)' };
      if (!driver) return { ok: false, reason: 'no chromedriver (apt-get install chromium-driver)' };
      return { ok: true, browser, driver };
    },
    start(found) {
      return ownedSession(async (own) => {
        const drv = await startDriver('chromium', found.driver, (port) => [`--port=${port}`]);
        own(drv.proc);
        const { driver, caps, sessionId } = await newSession(drv.url, {
          browserName: 'chrome',
          'goog:chromeOptions': { binary: found.browser, args: CHROMIUM_ARGS },
        });
        const cmd = (...a) => command(drv.url, sessionId, ...a);
        return {
          driver,
          version: `Chromium ${caps.get('browserVersion')}`,
          driverVersion: version(found.driver),
          // DevTools network emulation: navigator.onLine turns false, and every request
          // fails, 127.0.0.1 included, so the shop's own pages do not load either.
          offline: {
            how: 'DevTools emulation via chromedriver (blocks 127.0.0.1 too)',
            pagesLoad: false,
            set: (on) => (on
              ? cmd('POST', '/chromium/network_conditions', { network_conditions: { offline: true, latency: 0, download_throughput: 1e9, upload_throughput: 1e9 } })
              : cmd('DELETE', '/chromium/network_conditions')),
          },
        };
      });
    },
  },

  firefox: {
    name: 'firefox',
    find() {
      const browser = which(process.env.FIREFOX_BIN, '/usr/bin/firefox-esr', 'firefox-esr', 'firefox');
      const driver = which(process.env.GECKODRIVER, path.join(process.env.CARGO_HOME || path.join(home, '.cargo'), 'bin/geckodriver'), 'geckodriver');
      if (!browser) return { ok: false, reason: 'no firefox-esr (apt-get install firefox-esr)' };
      if (!driver) return { ok: false, reason: 'no geckodriver (cargo install geckodriver --locked)' };
      return { ok: true, browser, driver };
    },
    start(found) {
      return ownedSession(async (own) => {
        // --allow-system-access: lets the test switch Firefox's own "Work Offline" mode
        // (Services.io.offline) from the chrome context; nothing else uses it.
        const drv = await startDriver('firefox', found.driver, (port) => ['--port', String(port), '--log', 'warn', '--allow-system-access']);
        own(drv.proc);
        const { driver, caps, sessionId } = await newSession(drv.url, {
          browserName: 'firefox',
          'moz:firefoxOptions': {
            binary: found.browser,
            args: ['-headless'],
            prefs: {
              // Offline is what the test says, not what the network link looks like.
              'network.manage-offline-status': false,
              'network.captive-portal-service.enabled': false,
              'network.connectivity-service.enabled': false,
            },
          },
        });
        const cmd = (...a) => command(drv.url, sessionId, ...a);
        const inChrome = async (script) => {
          await cmd('POST', '/moz/context', { context: 'chrome' });
          try {
            await cmd('POST', '/execute/sync', { script, args: [] });
          } finally {
            await cmd('POST', '/moz/context', { context: 'content' });
          }
        };
        return {
          driver,
          version: `Firefox ${caps.get('browserVersion')}`,
          driverVersion: version(found.driver),
          // Firefox's "Work Offline": navigator.onLine turns false and fires "offline";
          // loopback stays reachable (network.disable-localhost-when-offline is false),
          // so the shop's pages on 127.0.0.1 still load: offline with real reloads.
          offline: {
            how: 'Work Offline via the chrome context (127.0.0.1 still loads)',
            pagesLoad: true,
            set: (on) => inChrome(`Services.io.offline = ${on ? 'true' : 'false'};`),
          },
        };
      });
    },
  },

  webkit: {
    name: 'webkit',
    find() {
      const driver = which(process.env.WEBKIT_WEBDRIVER, '/usr/bin/WebKitWebDriver', 'WebKitWebDriver');
      if (!driver) return { ok: false, reason: 'no WebKitWebDriver (apt-get install webkit2gtk-driver)' };
      const xvfb = which('Xvfb');
      if (!xvfb && !process.env.DISPLAY) return { ok: false, reason: 'WebKitGTK needs a display and there is no Xvfb (apt-get install xvfb)' };
      return { ok: true, driver, xvfb };
    },
    start(found) {
      return ownedSession(async (own) => {
        let x = null;
        let display = process.env.DISPLAY;
        if (found.xvfb) {
          x = await startXvfb(found.xvfb);
          own(x.proc);
          display = x.display;
        }
        const env = { ...process.env, DISPLAY: display, GDK_BACKEND: 'x11', LIBGL_ALWAYS_SOFTWARE: '1', WEBKIT_DISABLE_COMPOSITING_MODE: '1' };
        delete env.WAYLAND_DISPLAY;
        const drv = await startDriver('webkit', found.driver, (port) => [`--port=${port}`], env);
        own(drv.proc);
        const { driver, caps } = await newSession(drv.url, { browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { args: ['--automation', '--enable-itp'] } });
        return {
          driver,
          version: `WebKitGTK ${caps.get('browserVersion')} (MiniBrowser${x ? `, Xvfb ${display}` : `, DISPLAY ${display}`})`,
          driverVersion: 'WebKitWebDriver (webkit2gtk-driver)',
          offline: null,
          offlineWhyNot: 'WebKitWebDriver has no network emulation and MiniBrowser no offline switch',
        };
      });
    },
  },
};

/**
 * One engine's browser, as windows of one profile (they share localStorage, like the
 * tabs of one shop). A "home" window on the shop's origin, with no tracker, stays open
 * throughout: WebDriver ends the session when its last window closes.
 */
export class Browser {
  constructor(session, siteUrl) {
    this.s = session;
    this.driver = session.driver;
    this.siteUrl = siteUrl;
    this.current = null;
    this.homeHandle = null;
  }

  async init(homeUrl) {
    this.homeHandle = await this.driver.getWindowHandle();
    this.current = this.homeHandle;
    this.home = new Page(this, this.homeHandle);
    await this.home.goto(homeUrl);
  }

  async use(handle) {
    if (this.current === handle) return;
    await this.driver.switchTo().window(handle);
    this.current = handle;
  }

  /** A new window on `url`, once its page says it is ready. */
  async open(url) {
    await this.driver.switchTo().newWindow('window');
    const handle = await this.driver.getWindowHandle();
    this.current = handle;
    const page = new Page(this, handle);
    await page.goto(url);
    return page;
  }

  /** Closes every window but home and leaves home idle (no tracker) on `homeUrl`. */
  async reset(homeUrl) {
    const handles = await this.driver.getAllWindowHandles();
    for (const h of handles) {
      if (h === this.homeHandle) continue;
      await this.use(h);
      await this.driver.close().catch(() => {});
      this.current = null;
    }
    await this.use(this.homeHandle).catch(async () => {
      this.current = null;
      await this.use(this.homeHandle);
    });
    await this.home.goto(homeUrl);
  }
}

export class Page {
  constructor(browser, handle) {
    this.b = browser;
    this.handle = handle;
    this.closed = false;
  }

  /** Runs `fn(...args)` in the page (a promise it returns is awaited by the driver). */
  async eval(fn, ...args) {
    await this.b.use(this.handle);
    return this.b.driver.executeScript(`return (${fn}).apply(null, arguments);`, ...args);
  }

  /** Waits for page.js: "1" once the tracker (if any) is ready; throws with its init error. */
  async ready() {
    const state = await waitFor(() => this.eval(() => document.body && document.body.dataset.ready), { timeout: 20_000, interval: 50, what: 'the page to start' });
    if (state !== '1') throw new Error(`page did not start: ${await this.eval(() => window.initError)}`);
    return this;
  }

  async goto(url) {
    await this.b.use(this.handle);
    await this.b.driver.get(url);
    return this.ready();
  }

  /** Loads `url` without waiting for the tracker (the page may be an error page). */
  async load(url) {
    await this.b.use(this.handle);
    await this.b.driver.get(url).catch((e) => e);
  }

  async reload() {
    await this.b.use(this.handle);
    await this.b.driver.navigate().refresh();
    return this.ready();
  }

  /** Back in the window's history, without waiting for a tracker (a page restored from
   * the back/forward cache runs no script again). */
  async back() {
    await this.b.use(this.handle);
    await this.b.driver.navigate().back();
  }

  async close() {
    await this.b.use(this.handle);
    await this.b.driver.close();
    this.closed = true;
    this.b.current = null;
    await this.b.use(this.b.homeHandle);
  }
}
