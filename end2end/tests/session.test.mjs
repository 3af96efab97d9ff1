// Signing in and out in a real browser, and proof that the page hydrates.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, logIn } from './support.mjs';

const shared = usePortal();

test('a signed-out visitor is sent to the login page', async () => {
  const page = await shared.browser.newPage();
  await page.goto(`${shared.portal.url}/webhooks`);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.close();
});

test('the page hydrates: "Show password" works only once the wasm runs', async () => {
  const page = await shared.browser.newPage();
  await page.goto(`${shared.portal.url}/login`);
  await waitForHydration(page);
  const password = page.locator('#password');
  assert.equal(await password.getAttribute('type'), 'password');
  await page.getByRole('button', { name: 'Show password' }).click();
  await page.locator('#password[type="text"]').waitFor({ timeout: 5_000 });
  const toggle = page.getByRole('button', { name: 'Hide password' });
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  await page.close();
});

test('a wrong password is refused with a message, in place', async () => {
  const page = await shared.browser.newPage();
  await page.goto(`${shared.portal.url}/login`);
  await waitForHydration(page);
  await logIn(page, shared.portal, 'not the right password');
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: 10_000 });
  assert.equal((await alert.textContent()).trim(), 'Wrong email or password.');
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.close();
});

test('a partner logs in, sees its name, and logs out', async () => {
  const page = await shared.browser.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  const name = page.getByTestId('partner-name');
  await name.waitFor({ timeout: 10_000 });
  assert.equal((await name.textContent()).trim(), 'Acme Verification');
  assert.equal(await page.title(), 'Webhooks · Partner Webhook Portal');

  await waitForHydration(page);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL('**/login', { timeout: 10_000 });

  // The session is over: the webhooks page sends us back to the login page.
  await page.goto(`${shared.portal.url}/webhooks`);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.close();
});

test('login works before the wasm loads (plain HTML form)', async () => {
  const context = await shared.browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  assert.equal((await page.getByTestId('partner-name').textContent()).trim(), 'Acme Verification');
  await context.close();
});
