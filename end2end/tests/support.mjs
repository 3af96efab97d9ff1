// A portal and a browser for each test file: a fresh SQLite database in a temporary folder,
// a partner made with the CLI, `portal serve` on a free port, and Debian's Chromium.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const PORTAL_BIN = process.env.PORTAL_BIN ?? 'target/debug/portal';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;
// A debug build of the wasm is large; on a busy machine loading and compiling it takes a while.
const HYDRATION_DEADLINE_MS = 60_000;

/** Starts a portal with one partner and any extra settings in `settings`; resolves once it listens. */
export async function startPortal(settings = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'portal-e2e-'));
  // Private targets allowed: the tests' receivers listen on 127.0.0.1.
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite://${dir}/portal.db`,
    RUST_LOG: 'info',
    PORTAL_ALLOW_PRIVATE_TARGETS: 'true',
    ...settings,
  };
  const partner = JSON.parse(
    execFileSync(PORTAL_BIN, ['partner', 'create', '--name', 'Acme Verification', '--email', 'ann@acme.test', '--json'], { env }),
  );
  const child = spawn(PORTAL_BIN, ['serve', '--addr', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the portal did not start within ${START_DEADLINE_MS} ms:\n${log}`)), START_DEADLINE_MS);
    const onData = (chunk) => {
      log += chunk;
      const match = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the portal exited with ${code}:\n${log}`));
    });
  });
  return {
    url,
    partner: { ...partner, name: 'Acme Verification' },
    log: () => log,
    /**
     * Publishes an event for the partner with the operator's CLI (another process, same
     * database); `environment` (production when left out) and `data` (a JSON object) optional.
     */
    publish(id, type = 'verification.completed', { environment, data } = {}) {
      const args = ['event', 'publish', '--partner', partner.id, '--type', type, '--id', id, '--json'];
      if (environment) args.push('--environment', environment);
      if (data) args.push('--data', JSON.stringify(data));
      return JSON.parse(execFileSync(PORTAL_BIN, args, { env }));
    },
    /** SIGTERM, and SIGKILL if the portal has not exited within STOP_DEADLINE_MS. */
    async stop() {
      child.removeAllListeners('exit');
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.on('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with no background traffic (this machine has no network).
 * Every page it opens records what the Content-Security-Policy blocked, in `page.cspViolations`. */
export async function launchBrowser() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (...args) => {
    const page = await newPage(...args);
    page.cspViolations = [];
    page.problems = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) page.cspViolations.push(message.text());
      if (message.type() === 'error') page.problems.push(message.text());
    });
    page.on('pageerror', (error) => page.problems.push(String(error)));
    page.on('requestfailed', (request) => page.problems.push(`${request.url()}: ${request.failure()?.errorText}`));
    return page;
  };
  return browser;
}

/** Waits until the wasm has hydrated the page (the frontend marks <html data-hydrated>), and
 * checks the page's Content-Security-Policy blocked nothing on the way. */
export async function waitForHydration(page) {
  try {
    await page.locator('html[data-hydrated="true"]').waitFor({ state: 'attached', timeout: HYDRATION_DEADLINE_MS });
  } catch (error) {
    // Say why, when the browser knows: a failed wasm download, a panic, a blocked script.
    const problems = page.problems?.length ? page.problems.join('\n') : 'none reported by the browser';
    throw new Error(`${page.url()} did not hydrate within ${HYDRATION_DEADLINE_MS} ms; browser errors:\n${problems}`, { cause: error });
  }
  if (page.cspViolations?.length) {
    throw new Error(`the Content-Security-Policy blocked something:\n${page.cspViolations.join('\n')}`);
  }
}

/** Signs the partner's user in through the login form. */
export async function logIn(page, portal, password = portal.partner.password) {
  await page.goto(`${portal.url}/login`);
  await page.getByLabel('Email').fill(portal.partner.email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** A portal (with `settings`) and a browser shared by the tests of one file, started before and
 * stopped after. */
export function usePortal(settings = {}) {
  const shared = {};
  before(async () => {
    shared.portal = await startPortal(settings);
    shared.browser = await launchBrowser();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.portal?.stop();
  });
  return shared;
}

/** Signs the partner's user in and opens the new-webhook form, hydrated. */
export async function openNewWebhookForm(page, portal) {
  await logIn(page, portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.goto(`${portal.url}/webhooks/new`);
  await waitForHydration(page);
}

/** Waits until `check()` is true, polling every 50 ms, for at most `timeoutMs`. */
export async function waitUntil(what, check, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A partner's endpoint on 127.0.0.1: `respond(body)` gives `{ status, text }` for each request
 * (`body` is the request body as text); every request is kept in `received` as
 * `{ headers, body }`. It is closed when test `t` ends, passed or failed, so a failing test
 * never leaves a listening socket that keeps the test process alive. */
export async function startReceiver(t, respond) {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { status, text } = respond(body, received);
      received.push({ headers: req.headers, body });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(text);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${server.address().port}/hook`, received };
}
