// An admin adds a viewer on the Team page and gets a one-time link; the viewer sets their own
// password with it, reads the webhooks, is told plainly when they try to change one, and
// changes their password on their account page; the admin reads the audit log and removes them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, logIn, openNewWebhookForm } from './support.mjs';

const shared = usePortal();

test('an admin adds a viewer, who sets their password with the link and may not change webhooks', async () => {
  const page = await shared.browser.newPage();
  await openNewWebhookForm(page, shared.portal);
  await page.getByLabel('Webhook URL').fill('https://example.com/hook');
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_[0-9A-Z]{26}\?saved=(active|inactive)$/, { timeout: 10_000 });
  const webhookUrl = page.url();

  await page.goto(`${shared.portal.url}/settings/team`);
  await waitForHydration(page);
  await page.getByLabel('Email').fill('vic@acme.test');
  await page.getByLabel('Role').selectOption('viewer');
  await page.getByRole('button', { name: 'Add user' }).click();
  const link = await page.getByTestId('password-link').inputValue({ timeout: 10_000 });
  assert.ok(link.startsWith(`${shared.portal.url}/set-password?token=pwl_`), link);
  await page.getByTestId('team-row').filter({ hasText: 'vic@acme.test' }).waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('team-row').filter({ hasText: 'vic@acme.test' }).textContent(), /viewer/);

  // Vic, in a browser of their own, opens the link and chooses a password.
  const vicContext = await shared.browser.newContext();
  const vic = await vicContext.newPage();
  await vic.goto(link);
  await waitForHydration(vic);
  await vic.getByText('vic@acme.test').waitFor({ timeout: 10_000 });
  await vic.getByLabel('New password', { exact: true }).fill('vic picks this one');
  await vic.getByLabel('Confirm new password').fill('vic picks this one');
  await vic.getByRole('button', { name: 'Set password and sign in' }).click();
  await vic.waitForURL('**/webhooks', { timeout: 10_000 });
  await waitForHydration(vic);
  assert.equal(await vic.getByTestId('role').textContent(), 'viewer');
  await vic.goto(webhookUrl);
  await waitForHydration(vic);
  assert.equal(await vic.getByTestId('status').textContent(), 'Active');
  await vic.getByRole('button', { name: 'Deactivate' }).click();
  await vic.getByText(/Your role \(viewer\) lets you read webhooks and delivery logs, not change them/).waitFor({ timeout: 10_000 });
  await vic.reload();
  assert.equal(await vic.getByTestId('status').textContent(), 'Active', 'nothing changed');

  // The link worked once.
  const again = await vicContext.newPage();
  await again.goto(link);
  await again.getByText(/This link no longer works/).waitFor({ timeout: 10_000 });

  // Vic changes their password from their account page (the current one first).
  await vic.getByRole('link', { name: 'vic@acme.test' }).click();
  await vic.waitForURL('**/settings/account', { timeout: 10_000 });
  await waitForHydration(vic);
  await vic.getByLabel('Current password').fill('not the password');
  await vic.getByLabel('New password', { exact: true }).fill('and now another one');
  await vic.getByLabel('Confirm new password').fill('and now another one');
  await vic.getByRole('button', { name: 'Change password' }).click();
  await vic.getByText('is not your current password').waitFor({ timeout: 10_000 });
  await vic.getByLabel('Current password').fill('vic picks this one');
  await vic.getByRole('button', { name: 'Change password' }).click();
  await vic.getByText(/Your password is changed/).waitFor({ timeout: 10_000 });

  // Ann reads who did what, then removes Vic, whose session ends at once.
  await page.goto(`${shared.portal.url}/settings/audit`);
  await waitForHydration(page);
  await page.getByTestId('audit-row').filter({ hasText: 'changed own password' }).waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('audit-row').filter({ hasText: 'added user' }).textContent(), /ann@acme\.test.*vic@acme\.test as viewer/);
  await page.goto(`${shared.portal.url}/settings/team`);
  await waitForHydration(page);
  await page.getByTestId('team-row').filter({ hasText: 'vic@acme.test' }).getByText('Remove', { exact: true }).click();
  await page.getByRole('button', { name: 'Yes, remove vic@acme.test' }).click();
  await page.getByTestId('team-row').filter({ hasText: 'vic@acme.test' }).waitFor({ state: 'detached', timeout: 10_000 });
  await vic.reload();
  await vic.waitForURL('**/login', { timeout: 10_000 });

  await vicContext.close();
  await page.close();
});

test('the last admin can be neither demoted nor removed', async () => {
  const page = await shared.browser.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.goto(`${shared.portal.url}/settings/team`);
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Make viewer ann@acme.test' }).click();
  await page.getByText(/last admin/).waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('team-row').filter({ hasText: 'ann@acme.test' }).textContent(), /admin/);
  await page.close();
});
