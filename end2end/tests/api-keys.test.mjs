// The API keys page: a key is shown once, works on the API, and stops working when revoked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, logIn } from './support.mjs';

const shared = usePortal();

async function apiStatus(key) {
  const response = await fetch(`${shared.portal.url}/api/v1/partner`, { headers: { authorization: `Bearer ${key}` } });
  return response.status;
}

test('create an API key, see it once, use it, revoke it', async () => {
  const page = await shared.browser.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.waitForURL('**/settings/api-keys', { timeout: 10_000 });
  await waitForHydration(page);
  await page.getByRole('heading', { name: 'No API keys yet' }).waitFor({ timeout: 10_000 });

  await page.getByLabel('Key name').fill('Backend');
  await page.getByRole('button', { name: 'Create API key' }).click();
  const shown = page.getByTestId('new-key');
  await shown.waitFor({ timeout: 10_000 });
  const key = await shown.inputValue();
  assert.match(key, /^whp_live_[A-Za-z0-9]{40}$/);
  const row = page.getByRole('row', { name: /Backend/ });
  await row.waitFor({ timeout: 10_000 });
  assert.match(await row.textContent(), /Active/);
  assert.equal(await apiStatus(key), 200);

  // Once the page is left, the key is gone for good.
  await page.reload();
  await page.getByRole('row', { name: /Backend/ }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId('new-key').count(), 0);
  assert.ok(!(await page.content()).includes(key));

  await waitForHydration(page);
  await page.getByRole('button', { name: 'Revoke key Backend' }).click();
  await page.getByRole('row', { name: /Backend/ }).getByText('Revoked').waitFor({ timeout: 10_000 });
  assert.equal(await apiStatus(key), 401);
  await page.close();
});
