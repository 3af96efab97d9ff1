// The webhook journey of the partner docs: create with an auth header, see it in the list,
// edit it, deactivate and activate it, reveal the secret, delete it after confirming.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, logIn, openNewWebhookForm, startReceiver, waitUntil } from './support.mjs';

const shared = usePortal();

const shot = (page, name) => (process.env.SCREENSHOTS ? page.screenshot({ path: `${process.env.SCREENSHOTS}/${name}.png`, fullPage: true }) : null);

test('create, list, edit, deactivate, activate and delete a webhook', async () => {
  const page = await shared.browser.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.getByText('No webhooks yet').waitFor({ timeout: 10_000 });
  await shot(page, '1-empty');

  await page.getByRole('link', { name: 'Create Webhook' }).first().click();
  await page.waitForURL('**/webhooks/new', { timeout: 10_000 });
  await waitForHydration(page);

  // A bad URL is refused next to its field, and what was typed stays.
  await page.getByLabel('Webhook URL').fill('ftp://api.acme.test/hook');
  // Seed 004: the header, the template and the limits are under "Advanced configuration".
  await page.getByText('Advanced configuration (optional)').click();
  assert.equal(await page.getByRole('group', { name: 'Webhook authentication header' }).isVisible(), true);
  await page.getByLabel('Header name').fill('Authorization');
  await page.getByLabel('Header value').fill('Bearer partner-secret-9876');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.locator('#url-error', { hasText: 'https://' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByLabel('Header name').inputValue(), 'Authorization');
  await shot(page, '2-error');

  // The template preview follows what is typed.
  await page.getByLabel('Payload template (optional)').fill('{"ref": {{ data.verificationId|tojson }}}');
  await page.getByTestId('template-preview').filter({ hasText: '"ref":"ver_abc123"' }).waitFor({ timeout: 10_000 });

  await page.getByLabel('Webhook URL').fill('https://api.acme.test/webhooks');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_[0-9A-Z]{26}\?saved=(active|inactive)$/, { timeout: 10_000 });
  const detailUrl = page.url();
  await page.getByRole('heading', { name: 'https://api.acme.test/webhooks' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId('saved').textContent(), 'Your webhook is active and ready to receive notifications.');
  const header = await page.getByTestId('auth-header').textContent();
  assert.equal(header, 'Authorization: ••••••••9876', 'the value is masked after saving');
  assert.ok(!(await page.content()).includes('partner-secret-9876'), 'the value never reaches the page');
  await shot(page, '3-detail');

  // The signing secret is hidden until "Reveal".
  await waitForHydration(page);
  const secret = page.getByTestId('signing-secret');
  assert.ok(!(await secret.inputValue()).match(/^whsec_[A-Za-z0-9+/]{43}=$/));
  await page.getByRole('button', { name: 'Reveal' }).click();
  await page.waitForFunction(() => /^whsec_[A-Za-z0-9+/]{43}=$/.test(document.querySelector('[data-testid=signing-secret]').value), null, { timeout: 10_000 });
  const first = await secret.inputValue();

  // "Rotate" shows the new secret and says exactly what signs what until when.
  await page.getByRole('button', { name: 'Rotate' }).click();
  const notice = page.getByTestId('rotation-notice');
  await notice.waitFor({ timeout: 10_000 });
  assert.match(
    await notice.textContent(),
    /^New secret made\. Until \d{4}-\d\d-\d\d \d\d:\d\d UTC, x-webhook-signature stays signed with the old secret, and webhook-signature carries a signature by each; from then on only the new secret signs\./,
  );
  await waitUntil('the new secret to show', async () => (await secret.inputValue()) !== first);
  // After a leak the overlap can end at once.
  await notice.getByText('End the overlap now').click();
  await page.getByRole('button', { name: 'Yes, stop the old secret now' }).click();
  await notice.waitFor({ state: 'detached', timeout: 10_000 });

  // It is in the list.
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  const row = page.getByRole('row', { name: /api\.acme\.test\/webhooks/ });
  await row.waitFor({ timeout: 10_000 });
  assert.match(await row.textContent(), /Active/);
  await shot(page, '4-list');

  // Edit: change the URL; the saved header value is kept when its field is left empty.
  await page.goto(detailUrl);
  await page.getByRole('link', { name: 'Edit' }).click();
  await page.waitForURL('**/edit', { timeout: 10_000 });
  await waitForHydration(page);
  await page.getByLabel('Webhook URL').fill('https://api.acme.test/webhooks/v2');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.getByRole('heading', { name: 'https://api.acme.test/webhooks/v2' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId('auth-header').textContent(), 'Authorization: ••••••••9876');

  // Deactivate, then activate.
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Deactivate' }).click();
  await page.getByTestId('status').filter({ hasText: 'Inactive' }).waitFor({ timeout: 10_000 });
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.getByTestId('status').filter({ hasText: 'Active' }).waitFor({ timeout: 10_000 });

  // Delete, after a confirmation that names the URL.
  await page.getByText('Delete', { exact: true }).click();
  await page.getByText('Delete the webhook for https://api.acme.test/webhooks/v2?').waitFor({ timeout: 5_000 });
  await shot(page, '5-confirm');
  await page.getByRole('button', { name: 'Delete the webhook for https://api.acme.test/webhooks/v2' }).click();
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.getByText('No webhooks yet').waitFor({ timeout: 10_000 });
  await page.close();
});

test('"Test Webhook" sends a sample event and shows the answer in place', async (t) => {
  // A receiver on this machine that answers like a partner's endpoint.
  const receiver = await startReceiver(t, () => ({ status: 202, text: 'thanks, got it' }));
  const { url, received } = receiver;

  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill(url);
  await page.getByLabel('Active').uncheck();
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_/, { timeout: 10_000 });
  await waitForHydration(page);

  await page.getByRole('button', { name: 'Test Webhook' }).click();
  const result = page.getByTestId('test-result');
  await result.waitFor({ timeout: 15_000 });
  const text = await result.textContent();
  assert.match(text, /Success: Your endpoint is working correctly\. It answered 202 in \d+ ms\./);
  assert.match(text, /thanks, got it/);
  assert.equal(received.length, 1);
  assert.equal(JSON.parse(received[0].body).type, 'verification.completed');
  assert.match(received[0].headers['x-webhook-signature'], /^[0-9a-f]{64}$/);
  await shot(page, '6-test');
  await page.close();
});

test('each row of the list offers Edit, Test, View Logs, Deactivate and Delete', async (t) => {
  let answer = 200;
  const receiver = await startReceiver(t, () => ({ status: answer, text: 'ok' }));
  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill(receiver.url);
  await page.getByLabel('Active').uncheck();
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.getByTestId('saved').filter({ hasText: 'Your webhook is saved, inactive' }).waitFor({ timeout: 10_000 });

  await page.goto(`${shared.portal.url}/webhooks`);
  await waitForHydration(page);
  assert.equal(await page.getByRole('columnheader', { name: 'Created date' }).isVisible(), true);
  const row = page.getByTestId('webhook-row').filter({ hasText: receiver.url });
  const menu = () => row.locator('details.row-menu > .menu');
  const open = async () => {
    if (!(await row.locator('details.row-menu').evaluate((d) => d.open))) await row.getByText('Actions', { exact: true }).click();
  };
  await open();
  assert.ok(await menu().getByRole('link', { name: 'Edit' }).getAttribute('href').then((h) => h.endsWith('/edit')));
  assert.ok(await menu().getByRole('link', { name: 'View Logs' }).getAttribute('href').then((h) => h.endsWith('/logs')));

  // Test, from the row: the answer shows above the list.
  await menu().getByRole('button', { name: 'Test' }).click();
  await page.getByTestId('test-result').filter({ hasText: 'Success: Your endpoint is working correctly. It answered 200' }).waitFor({ timeout: 15_000 });
  assert.equal(receiver.received.length, 1);

  // Activate from the row; an event then arrives, and the row's last delivery says how it went.
  await open();
  await menu().getByRole('button', { name: 'Activate' }).click();
  const status = () => row.getByRole('cell').nth(1).textContent();
  await waitUntil('the row to say Active', async () => (await status()) === 'Active');
  shared.portal.publish('evt_row_actions');
  await waitUntil('the event to arrive', () => receiver.received.length === 2);
  await waitUntil('its attempt to be written', async () => {
    await page.reload();
    await waitForHydration(page);
    return /\(succeeded\)/.test(await row.getByRole('cell').nth(3).textContent());
  });

  // The webhook's page says the same, and then that the next delivery failed.
  const list = page.url();
  await open();
  const webhookPage = (await menu().getByRole('link', { name: 'Edit' }).getAttribute('href')).replace(/\/edit$/, '');
  await page.goto(`${shared.portal.url}${webhookPage}`);
  const lastDelivery = () => page.getByTestId('last-delivery').textContent();
  assert.match(await lastDelivery(), /\(succeeded\)$/);
  answer = 500;
  shared.portal.publish('evt_row_actions_failing');
  await waitUntil('the failing delivery to arrive', () => receiver.received.length >= 3);
  await waitUntil('the webhook page to say it failed', async () => {
    await page.reload();
    return /\(failed\)$/.test(await lastDelivery());
  });
  await page.goto(list);
  await waitForHydration(page);

  // Deactivate from the row.
  await open();
  await menu().getByRole('button', { name: 'Deactivate' }).click();
  await waitUntil('the row to say Inactive', async () => (await status()) === 'Inactive');

  // Delete, after a confirmation that names the URL.
  await open();
  await menu().getByText('Delete', { exact: true }).click();
  await page.getByRole('button', { name: `Delete the webhook for ${receiver.url}` }).click();
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  await page.close();
});
