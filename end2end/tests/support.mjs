// A portal and a browser for each test file: a fresh SQLite database in a temporary folder,
// a partner made with the CLI, `portal serve` on a free port, and Debian's Chromium.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const PORTAL_BIN = process.env.PORTAL_BIN ?? 'target/debug/portal';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const START_DEADLINE_MS = 30_000;

/** Starts a portal with one partner; resolves once it listens. */
export async function startPortal() {
  const dir = mkdtempSync(join(tmpdir(), 'portal-e2e-'));
  // Private targets allowed: the tests' receivers listen on 127.0.0.1.
  const env = { ...process.env, DATABASE_URL: `sqlite://${dir}/portal.db`, RUST_LOG: 'info', PORTAL_ALLOW_PRIVATE_TARGETS: 'true' };
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
    /** Publishes an event for the partner with the operator's CLI (another process, same database). */
    publish(id, type = 'verification.completed') {
      return JSON.parse(
        execFileSync(PORTAL_BIN, ['event', 'publish', '--partner', partner.id, '--type', type, '--id', id, '--json'], { env }),
      );
    },
    async stop() {
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with no background traffic (this machine has no network). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** Waits until the wasm has hydrated the page (the frontend marks <html data-hydrated>). */
export async function waitForHydration(page) {
  await page.locator('html[data-hydrated="true"]').waitFor({ state: 'attached', timeout: 20_000 });
}

/** Signs the partner's user in through the login form. */
export async function logIn(page, portal, password = portal.partner.password) {
  await page.goto(`${portal.url}/login`);
  await page.getByLabel('Email').fill(portal.partner.email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** A portal and a browser shared by the tests of one file, started before and stopped after. */
export function usePortal() {
  const shared = {};
  before(async () => {
    shared.portal = await startPortal();
    shared.browser = await launchBrowser();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.portal?.stop();
  });
  return shared;
}
