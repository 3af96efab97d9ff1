// The delivery log journey: "View Logs", new attempts appearing while the page is open,
// filtering failures (the filter lives in the URL), an attempt's detail, and Resend.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, openNewWebhookForm, startReceiver, waitUntil } from './support.mjs';

const shared = usePortal();

const idOf = (request) => JSON.parse(request.body).id;

/** Fails the first request for `evt_e2e_bad` and accepts everything else. */
function failFirstBad(body, received) {
  const firstBad = JSON.parse(body).id === 'evt_e2e_bad' && !received.some((r) => idOf(r) === 'evt_e2e_bad');
  return firstBad ? { status: 500, text: 'database is down' } : { status: 200, text: 'ok' };
}

test('View Logs, filter failures, open an attempt and resend it', async (t) => {
  const receiver = await startReceiver(t, failFirstBad);
  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill(receiver.url);
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_[0-9A-Z]{26}\?saved=(active|inactive)$/, { timeout: 10_000 });

  shared.portal.publish('evt_e2e_good');
  shared.portal.publish('evt_e2e_bad', 'verification.failed');
  // The bad one fails once, then its retry 1 s later succeeds.
  await waitUntil('three requests', () => receiver.received.length >= 3);

  await page.getByRole('link', { name: 'View Logs' }).click();
  await page.waitForURL(/\/logs$/, { timeout: 10_000 });
  await waitForHydration(page);
  const rows = page.getByTestId('attempt-row');
  await waitUntil('three rows', async () => (await rows.count()) === 3);

  // A new attempt shows up without a reload.
  shared.portal.publish('evt_e2e_live');
  await page.getByTestId('attempt-row').filter({ hasText: 'evt_e2e_live' }).waitFor({ timeout: 15_000 });

  // Filter failures: one row, and the filter is in the URL to share.
  await page.getByLabel('Outcome').selectOption('failure');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/outcome=failure/, { timeout: 10_000 });
  await waitUntil('only the failure', async () => (await rows.count()) === 1);
  const failure = rows.first();
  assert.match(await failure.textContent(), /evt_e2e_bad/);
  assert.match(await failure.textContent(), /Failed/);
  assert.match(await failure.textContent(), /500/);

  // Its detail: what was sent and what came back.
  await failure.getByRole('link').first().click();
  await page.waitForURL(/\/logs\/att_[0-9A-Z]{26}$/, { timeout: 10_000 });
  await page.getByTestId('response-body').filter({ hasText: 'database is down' }).waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('request-body').textContent(), /"id":"evt_e2e_bad"/);
  assert.match(await page.getByTestId('request-headers').textContent(), /x-webhook-signature: [0-9a-f]{64}/);

  // Resend: the same event goes out again and the log shows it as a resend.
  await waitForHydration(page);
  const before = receiver.received.filter((r) => idOf(r) === 'evt_e2e_bad').length;
  await page.getByRole('button', { name: 'Resend' }).click();
  await page.getByText(/Sent again as delivery dlv_/).waitFor({ timeout: 10_000 });
  await waitUntil('the resent request', () => receiver.received.filter((r) => idOf(r) === 'evt_e2e_bad').length === before + 1);
  await page.getByRole('link', { name: 'See it in the log' }).click();
  const resent = page.getByTestId('attempt-row').filter({ has: page.locator('.tag', { hasText: /^resend$/ }) });
  await resent.waitFor({ timeout: 15_000 });
  assert.match(await resent.textContent(), /evt_e2e_bad/);
  await page.close();
});
