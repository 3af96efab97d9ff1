// Sandbox and production (#20): the header's switch moves every page to the other
// environment's webhooks, sandbox pages carry the band, and events published to one
// environment reach only its webhooks. Event search finds an event by the verificationId a
// customer quotes and shows where it went.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, openNewWebhookForm, startReceiver, waitUntil } from './support.mjs';

const shared = usePortal();

/** Creates a webhook for `url`, signing in first unless `signedIn`. */
async function createWebhook(page, portal, url, { signedIn = false } = {}) {
  if (signedIn) {
    await page.goto(`${portal.url}/webhooks/new`);
    await waitForHydration(page);
  } else {
    await openNewWebhookForm(page, portal);
  }
  await page.getByLabel('Webhook URL').fill(url);
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_\w+\?saved=active$/, { timeout: 10_000 });
}

async function switchTo(page, label) {
  await page.getByTestId('environment-switch').getByRole('button', { name: label }).click();
  // The page is loaded again, drawn for the other environment.
  await page.getByTestId('environment-switch').getByRole('button', { name: label, pressed: true }).waitFor({ timeout: 10_000 });
  assert.match(page.url(), /\/webhooks$/);
  await waitForHydration(page);
}

test('switch environment and see the other set of webhooks', async (t) => {
  const production = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const sandbox = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  await createWebhook(page, shared.portal, `${production.url}/production`);
  await page.goto(`${shared.portal.url}/webhooks`);
  await waitForHydration(page);
  assert.equal(await page.getByTestId('sandbox-band').count(), 0, 'no band in production');

  await switchTo(page, 'Sandbox');
  await page.getByTestId('sandbox-band').waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('sandbox-band').textContent(), /Sandbox/);
  assert.equal(await page.getByText(`${production.url}/production`).count(), 0, "production's webhook is not in the sandbox");
  await createWebhook(page, shared.portal, `${sandbox.url}/sandbox`, { signedIn: true });
  // The band is on every sandbox page, the webhook's own included.
  await page.getByTestId('sandbox-band').waitFor({ timeout: 10_000 });

  shared.portal.publish('evt_env_sandbox', 'verification.completed', { environment: 'sandbox' });
  shared.portal.publish('evt_env_production');
  await waitUntil('each event at its own environment', () => sandbox.received.length === 1 && production.received.length === 1);
  assert.equal(JSON.parse(sandbox.received[0].body).id, 'evt_env_sandbox');
  assert.equal(JSON.parse(production.received[0].body).id, 'evt_env_production');

  await switchTo(page, 'Production');
  await page.getByText(`${production.url}/production`).first().waitFor({ timeout: 10_000 });
  assert.equal(await page.getByText(`${sandbox.url}/sandbox`).count(), 0, "the sandbox's webhook is not in production");
  assert.equal(await page.getByTestId('sandbox-band').count(), 0);
  await page.close();
});

test('find an event by its verificationId and see where it went', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  await createWebhook(page, shared.portal, `${receiver.url}/search`);
  shared.portal.publish('evt_find_me', 'verification.completed', { data: { verificationId: 'ver_customer_7731', sessionId: 'ses_1' } });
  shared.portal.publish('evt_not_me', 'verification.completed', { data: { verificationId: 'ver_someone_else' } });
  await waitUntil('both events delivered', () => receiver.received.length >= 2);

  await page.goto(`${shared.portal.url}/events`);
  await waitForHydration(page);
  await page.getByLabel('Event id, verificationId or sessionId').fill('ver_customer_7731');
  await page.getByRole('button', { name: 'Find events' }).click();
  await page.waitForURL(/\/events\?search=ver_customer_7731/, { timeout: 10_000 });
  await waitForHydration(page);
  const rows = page.getByTestId('event-row');
  await rows.first().waitFor({ timeout: 10_000 });
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /evt_find_me/);

  await rows.first().getByRole('link', { name: 'evt_find_me' }).click();
  await page.waitForURL(/\/events\/evt_find_me$/, { timeout: 10_000 });
  await page.getByTestId('event-id').filter({ hasText: 'evt_find_me' }).waitFor({ timeout: 10_000 });
  // The first test's production webhook took it too; this one is ours.
  const delivery = page.getByTestId('event-delivery').filter({ hasText: `${receiver.url}/search` });
  await waitUntil('the delivery shows its attempt', async () => {
    await page.reload();
    return (await delivery.count()) === 1 && (await delivery.getByTestId('event-attempt').count()) === 1;
  });
  assert.match(await delivery.textContent(), /succeeded/);
  assert.match(await page.locator('pre.payload').textContent(), /ver_customer_7731/);
  await page.close();
});
