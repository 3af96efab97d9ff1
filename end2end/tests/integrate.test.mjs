// Helping partners integrate: the event catalog's examples match its schemas, and Test Webhook
// sends any event type, with the example data or the partner's edit, bodies the schemas accept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { usePortal, waitForHydration, logIn, startReceiver, waitUntil } from './support.mjs';

const shared = usePortal();

const TYPES = ['verification.completed', 'verification.failed', 'verification.expired', 'review.completed'];

/** Reads each type's schema and example off `/event-types`, compiled with Ajv (JSON Schema 2020-12). */
async function readCatalog(page) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const catalog = {};
  for (const type of TYPES) {
    const anchor = type.replace('.', '-');
    await page.getByRole('heading', { name: type }).waitFor({ timeout: 10_000 });
    const schema = JSON.parse(await page.getByTestId(`schema-${anchor}`).textContent());
    const example = JSON.parse(await page.getByTestId(`example-${anchor}`).textContent());
    catalog[type] = { validate: ajv.compile(schema), example };
  }
  return catalog;
}

test('the event catalog shows every type, and Test Webhook sends any of them as the catalog describes', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });

  await page.getByRole('link', { name: 'Event types' }).click();
  await page.waitForURL('**/event-types', { timeout: 10_000 });
  const catalog = await readCatalog(page);
  for (const [type, { validate, example }] of Object.entries(catalog)) {
    assert.ok(validate(example), `${type}'s example fits its schema: ${JSON.stringify(validate.errors)}`);
    assert.equal(example.type, type);
  }

  // Already signed in: straight to the form.
  await page.goto(`${shared.portal.url}/webhooks/new`);
  await waitForHydration(page);
  await page.getByLabel('Webhook URL').fill(receiver.url);
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_/, { timeout: 10_000 });
  await waitForHydration(page);

  // Each type, with its example data: what arrives fits the catalog's schema of that type.
  const result = page.getByTestId('test-result');
  for (const [i, type] of TYPES.entries()) {
    await page.getByLabel('Event type').selectOption(type);
    await page.getByRole('button', { name: 'Test Webhook' }).click();
    await waitUntil(`test ${i + 1} to arrive`, () => receiver.received.length === i + 1);
    // The button reads "Test Webhook" again once the answer is in.
    await page.getByRole('button', { name: 'Test Webhook' }).waitFor({ timeout: 15_000 });
    assert.match(await result.textContent(), /Success: Your endpoint is working correctly\. It answered 200 in \d+ ms\./);
    const body = JSON.parse(receiver.received[i].body);
    assert.equal(body.type, type);
    assert.ok(catalog[type].validate(body), `${type} as sent fits its schema: ${JSON.stringify(catalog[type].validate.errors)}`);
  }

  // The partner's own data for verification.failed.
  await page.getByLabel('Event type').selectOption('verification.failed');
  await page.getByText('Edit the example data').click();
  const data = page.getByLabel("The event's data (a JSON object)");
  assert.match(await data.inputValue(), /"FAILED"/, 'the example of the type picked');
  await data.fill('{"verificationId": "ver_edited", "sessionId": 42, "status": "FAILED", "failure": {"code": "X", "message": "m"}}');
  await page.getByRole('button', { name: 'Test Webhook' }).click();
  await waitUntil('the edited test to arrive', () => receiver.received.length === TYPES.length + 1);
  const edited = JSON.parse(receiver.received[TYPES.length].body);
  assert.equal(edited.type, 'verification.failed');
  assert.deepEqual(edited.data, { verificationId: 'ver_edited', sessionId: 42, status: 'FAILED', failure: { code: 'X', message: 'm' } });

  // Data that is not JSON is refused by name, and nothing is sent.
  await data.fill('{"verificationId": ');
  await page.getByRole('button', { name: 'Test Webhook' }).click();
  await page.getByText('data is not valid JSON').waitFor({ timeout: 10_000 });
  assert.equal(receiver.received.length, TYPES.length + 1);
  await page.close();
});
