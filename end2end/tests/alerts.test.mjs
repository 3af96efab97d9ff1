// When the dispatcher switches a webhook off, a banner tells the partner on every page until
// they dismiss it; the webhook form takes a rate limit and a cap on requests at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, openNewWebhookForm, startReceiver } from './support.mjs';

// Short retries, so a failing webhook is switched off within a second.
const shared = usePortal({ PORTAL_RETRY_SCHEDULE: '100ms,100ms' });

test('a deactivation banner shows on every page until dismissed; the form keeps a rate limit and a cap', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 500, text: 'down for maintenance' }));
  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill(receiver.url);
  // Out of range, the browser itself refuses them and nothing is sent (the server's 422 for
  // the same values is tested through the API).
  await page.getByText('Advanced configuration (optional)').click();
  const rate = page.getByLabel('Rate limit (optional)');
  const cap = page.getByLabel('Max concurrent requests (optional)');
  await rate.fill('0');
  await cap.fill('65');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  assert.equal(await rate.evaluate((input) => input.validity.rangeUnderflow), true);
  assert.equal(await cap.evaluate((input) => input.validity.rangeOverflow), true);
  assert.match(page.url(), /\/webhooks\/new$/);
  await rate.fill('20');
  await cap.fill('8');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_[0-9A-Z]{26}\?saved=(active|inactive)$/, { timeout: 10_000 });
  assert.equal(await page.getByTestId('rate-limit').textContent(), '20 requests per second');
  assert.equal(await page.getByTestId('max-concurrent-requests').textContent(), '8 at once');

  shared.portal.publish('evt_e2e_alert');
  // Three failed attempts, then the dispatcher switches it off; the next page load shows it.
  const banner = page.getByTestId('deactivation-banner');
  const until = Date.now() + 15_000;
  while ((await banner.count()) === 0) {
    assert.ok(Date.now() < until, 'the banner appeared within 15 s');
    await page.goto(`${shared.portal.url}/webhooks`);
  }
  assert.match(await banner.textContent(), new RegExp(receiver.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.match(await banner.textContent(), /answered 500/);

  // On every page, until dismissed.
  await page.goto(`${shared.portal.url}/logs`);
  await banner.waitFor({ timeout: 10_000 });
  await waitForHydration(page);
  await banner.getByRole('button', { name: 'Dismiss' }).click();
  await banner.waitFor({ state: 'detached', timeout: 10_000 });
  await page.goto(`${shared.portal.url}/webhooks`);
  assert.equal(await banner.count(), 0, 'dismissed for good');
  await page.close();
});
