// After an outage on the partner's side: the webhook's deliveries failed and it was switched
// off; the partner fixes the endpoint, activates the webhook, counts the failed deliveries and
// recovers them, and watches them succeed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, openNewWebhookForm, startReceiver, waitUntil } from './support.mjs';

// One quick retry, so an outage switches the webhook off within a second.
const shared = usePortal({ PORTAL_RETRY_SCHEDULE: '50ms' });

test('recover failed deliveries after an outage and watch them succeed', async (t) => {
  let down = true;
  const receiver = await startReceiver(t, () => (down ? { status: 503, text: 'down for maintenance' } : { status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill(receiver.url);
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_\w+\?saved=active$/, { timeout: 10_000 });
  const since = new Date(Date.now() - 60_000).toISOString().slice(0, 16);

  shared.portal.publish('evt_outage_1');
  await waitUntil('the event to fail twice', () => receiver.received.length === 2);
  await waitUntil('the webhook to be switched off', async () => {
    await page.reload();
    await waitForHydration(page);
    return (await page.getByTestId('status').textContent()) === 'Inactive';
  });

  // Fixed: activate, count, recover.
  down = false;
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.getByTestId('status').filter({ hasText: /^Active$/ }).waitFor({ timeout: 10_000 });
  await page.getByText('Recover failed deliveries').click();
  await page.getByLabel('Failed since (UTC)').fill(since);
  await page.getByRole('button', { name: 'Count failed deliveries' }).click();
  const count = page.getByTestId('recover-count');
  await count.waitFor({ timeout: 10_000 });
  assert.match(await count.textContent(), /^1 delivery failed from /);
  await page.getByRole('button', { name: 'Recover 1 delivery' }).click();
  await page.getByTestId('recover-progress').filter({ hasText: '1 of 1 delivered, 0 failed again, 0 waiting' }).waitFor({ timeout: 15_000 });
  assert.deepEqual(receiver.received.slice(2).map((r) => JSON.parse(r.body).id), ['evt_outage_1']);
  await page.close();
});
