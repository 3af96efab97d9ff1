// An admin adds a viewer on the Team page; the viewer signs in, reads the webhooks, and is
// told plainly when they try to change one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, logIn, openNewWebhookForm } from './support.mjs';

const shared = usePortal();

test('an admin adds a viewer, who reads webhooks but may not change them', async () => {
  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill('https://example.com/hook');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_[0-9A-Z]{26}$/, { timeout: 10_000 });
  const webhookUrl = page.url();

  await page.goto(`${shared.portal.url}/settings/team`);
  await waitForHydration(page);
  await page.getByLabel('Email').fill('vic@acme.test');
  await page.getByLabel('Role').selectOption('viewer');
  await page.getByRole('button', { name: 'Add user' }).click();
  const password = await page.getByTestId('new-password').inputValue({ timeout: 10_000 });
  assert.match(password, /^[A-Za-z0-9]{20,}$/);
  await page.getByTestId('team-row').filter({ hasText: 'vic@acme.test' }).waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('team-row').filter({ hasText: 'vic@acme.test' }).textContent(), /viewer/);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL('**/login', { timeout: 10_000 });

  await logIn(page, { ...shared.portal, partner: { ...shared.portal.partner, email: 'vic@acme.test' } }, password);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  assert.equal(await page.getByTestId('role').textContent(), 'viewer');
  await page.goto(webhookUrl);
  await waitForHydration(page);
  assert.equal(await page.getByTestId('status').textContent(), 'Active');
  await page.getByRole('button', { name: 'Deactivate' }).click();
  await page.getByText(/Your role \(viewer\) lets you read webhooks and delivery logs, not change them/).waitFor({ timeout: 10_000 });
  await page.reload();
  assert.equal(await page.getByTestId('status').textContent(), 'Active', 'nothing changed');
  await page.close();
});
