// Every page, at a desktop width and at a phone's 390 px: axe-core finds no serious or
// critical violation, and at 390 px nothing scrolls sideways. With SCREENSHOTS_DIR set (see
// scripts/screenshots.sh) each page is also saved as a picture at both widths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { usePortal, waitForHydration, logIn, startReceiver } from './support.mjs';

const shared = usePortal();
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const WIDTHS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };
const SHOTS = process.env.SCREENSHOTS_DIR;

/** axe-core's serious and critical violations on the page, one line each. axe is evaluated
 * through the browser's debugging protocol, which the page's Content-Security-Policy does not
 * govern (an injected <script> would be refused, as it should be). */
async function axeProblems(page) {
  await page.evaluate(`${AXE}\n;0`);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

/** How far the page is wider than the window, in CSS pixels (0 when nothing scrolls sideways). */
async function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

test('every page passes axe and fits a 390 px phone', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await check(page, { 'webhooks-empty': '/webhooks' });
  // Each list says, while empty, what goes there and how to start.
  const empty = {
    '/webhooks': 'No webhooks yet',
    '/logs': 'No attempts yet. Each request we send, and each test, shows up here',
    '/events': 'No events yet in this environment.',
    '/inspectors': 'No capture URLs yet',
    '/settings/api-keys': 'No API keys yet',
    '/settings/audit': 'Nothing yet. Changes to your webhooks, API keys and team will be listed here',
  };
  for (const [path, words] of Object.entries(empty)) {
    await page.goto(`${shared.portal.url}${path}`);
    await page.getByText(words).waitFor({ timeout: 10_000 });
  }

  // Something on every page: a webhook with a long URL, an attempt in its log, an inspector.
  await page.goto(`${shared.portal.url}/webhooks/new`);
  await waitForHydration(page);
  const longUrl = `${receiver.url}/a/rather/long/path/that/a/partner/might/really/use/for/their/webhooks?tenant=acme-verification`;
  await page.getByLabel('Webhook URL').fill(longUrl);
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_\w+\?saved=active$/, { timeout: 10_000 });
  const webhook = new URL(page.url()).pathname;
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Test Webhook' }).click();
  await page.getByTestId('test-result').waitFor({ timeout: 15_000 });
  await page.goto(`${shared.portal.url}${webhook}/logs`);
  await waitForHydration(page);
  const attempt = await page.locator('a[href*="/logs/att_"]').first().getAttribute('href', { timeout: 10_000 });
  await page.goto(`${shared.portal.url}/inspectors`);
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Create a capture URL' }).click();
  await page.waitForURL(/\/inspectors\/ins_\w+$/, { timeout: 10_000 });
  const inspector = new URL(page.url()).pathname;
  shared.portal.publish('evt_screens', 'verification.completed', { data: { verificationId: 'ver_screens' } });
  // A colleague, whose one-time link (unused) gives the form to set a password.
  const added = await page.request.post(`${shared.portal.url}/api/team/add`, {
    form: { email: 'vic@acme.test', role: 'viewer' },
    headers: { referer: `${shared.portal.url}/settings/team` },
  });
  assert.equal(added.status(), 200, await added.text());
  const link = new URL((await added.json()).link.url);

  await check(page, {
    webhooks: '/webhooks',
    'webhook-new': '/webhooks/new',
    webhook,
    'webhook-edit': `${webhook}/edit`,
    'webhook-logs': `${webhook}/logs`,
    attempt,
    integrate: `${webhook}/integrate`,
    logs: '/logs',
    events: '/events',
    event: '/events/evt_screens',
    'event-types': '/event-types',
    'signature-checker': '/tools/signature',
    inspectors: '/inspectors',
    inspector,
    'api-keys': '/settings/api-keys',
    team: '/settings/team',
    account: '/settings/account',
    audit: '/settings/audit',
    'not-found': '/no-such-page',
  });
  // A sandbox page, with its band (switched at desktop width, where the switch is in view).
  await page.setViewportSize(WIDTHS.desktop);
  await page.goto(`${shared.portal.url}/webhooks`);
  await waitForHydration(page);
  await page.getByTestId('environment-switch').getByRole('button', { name: 'Sandbox' }).click();
  await page.getByTestId('sandbox-band').waitFor({ timeout: 10_000 });
  await check(page, { 'sandbox-webhooks': '/webhooks' });
  await page.close();

  // And the pages of someone not signed in.
  const stranger = await shared.browser.newPage();
  await check(stranger, {
    login: '/login',
    'set-password': `${link.pathname}${link.search}`,
    'set-password-spent': '/set-password?token=pwl_spent',
  });
  await stranger.close();
});

test('on a phone the header folds into a menu that opens, navigates and folds again', async () => {
  const page = await shared.browser.newPage({ viewport: WIDTHS.phone });
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await waitForHydration(page);
  const menu = page.getByRole('button', { name: 'Menu' });
  const events = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Events' });
  const you = page.getByRole('link', { name: shared.portal.partner.email });
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');
  assert.equal(await events.isVisible(), false, 'the navigation is folded away');
  assert.equal(await you.isVisible(), false, 'and the account with it');

  await menu.click();
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  assert.equal(await you.isVisible(), true);
  await events.click();
  await page.waitForURL('**/events', { timeout: 10_000 });
  await page.getByRole('heading', { name: 'Events', level: 1 }).waitFor({ timeout: 10_000 });
  assert.equal(await menu.getAttribute('aria-expanded'), 'false', 'folded again on the new page');
  assert.equal(await events.isVisible(), false);

  // At a desktop's width there is no menu to open: the links are in the header.
  await page.setViewportSize(WIDTHS.desktop);
  assert.equal(await menu.isVisible(), false);
  assert.equal(await events.isVisible(), true);
  await page.close();
});

/** Opens each of `pages` (name → path) at each width; fails naming every problem found. */
async function check(page, pages) {
  const problems = [];
  for (const [width, size] of Object.entries(WIDTHS)) {
    await page.setViewportSize(size);
    for (const [name, path] of Object.entries(pages)) {
      await page.goto(`${shared.portal.url}${path}`);
      await waitForHydration(page);
      for (const problem of await axeProblems(page)) problems.push(`${name} (${width}): ${problem}`);
      const wider = await overflow(page);
      if (wider > 0) problems.push(`${name} (${width}): ${wider} px wider than the window`);
      if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
    }
  }
  assert.deepEqual(problems, []);
}
