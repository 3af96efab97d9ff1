// Helping partners integrate, part two. The signature checker says a pasted request is genuine,
// and why one re-serialised is not. The integration guide: a partner copies the Node.js or the Python receiver off the page, runs
// it with the webhook's secret, and it accepts the portal's real delivery, then refuses the same
// request with its body tampered with, without the auth header, or with another timestamp, and
// answers a repeat as a duplicate. The request inspector: a capture URL shows what arrives,
// live.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { usePortal, waitForHydration, logIn, startReceiver, waitUntil } from './support.mjs';

const shared = usePortal();

// How each copied receiver runs: the packages it names come from end2end/package.json (npm) and
// scripts/test-requirements.txt (pip), both installed by scripts/setup.sh --browser.
const RUNNERS = {
  node: { file: 'server.js', command: 'node', env: { NODE_PATH: fileURLToPath(new URL('../node_modules', import.meta.url)) } },
  python: { file: 'receiver.py', command: 'python3', env: { PYTHONUNBUFFERED: '1' } },
};

/** A port nothing listens on now. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** POSTs `body` with `headers` to the receiver on `port`; its status and text. */
async function post(port, path, headers, body) {
  // fetch sets these itself.
  const { host, connection, 'content-length': _length, 'transfer-encoding': _encoding, ...rest } = headers;
  const answer = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: rest, body });
  return { status: answer.status, text: await answer.text() };
}

/** Where the webhook points: passes each delivery on to the receiver on `port` (same path) and
 * keeps what it passed on and what the receiver answered, so the test can send it again. */
async function startRecordingProxy(t, port) {
  const passed = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = await post(port, req.url, req.headers, body).catch((e) => ({ status: 502, text: String(e) }));
      passed.push({ path: req.url, headers: req.headers, body, answer });
      res.writeHead(answer.status, { 'content-type': 'text/plain' });
      res.end(answer.text);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { base: `http://127.0.0.1:${server.address().port}`, passed };
}

/** Runs the copied code as a partner would, until test `t` ends; its output in `output()`. */
function runReceiver(t, language, code, env) {
  const runner = RUNNERS[language];
  const dir = mkdtempSync(join(tmpdir(), `portal-guide-${language}-`));
  writeFileSync(join(dir, runner.file), code);
  const child = spawn(runner.command, [runner.file], { cwd: dir, env: { ...process.env, ...runner.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { output: () => output, exited: () => child.exitCode !== null };
}

for (const language of Object.keys(RUNNERS)) {
  test(`the guide's ${language} receiver, copied off the page, verifies a real delivery and refuses a tampered one`, async (t) => {
    const port = await freePort();
    const proxy = await startRecordingProxy(t, port);
    const context = await shared.browser.newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
    t.after(() => context.close());
    const page = await context.newPage();
    await logIn(page, shared.portal);
    await page.waitForURL('**/webhooks', { timeout: 10_000 });

    // A webhook with an auth header, pointing (through the recorder) at where the code will listen.
    const authValue = `partner-value-${language}-0123456789`;
    await page.goto(`${shared.portal.url}/webhooks/new`);
    await waitForHydration(page);
    await page.getByLabel('Webhook URL').fill(`${proxy.base}/hooks/kyc`);
    await page.getByText('Advanced configuration (optional)').click();
    await page.getByLabel('Header name').fill('X-Partner-Key');
    await page.getByLabel('Header value').fill(authValue);
    await page.getByRole('button', { name: 'Save Webhook' }).click();
    await page.waitForURL(/\/webhooks\/wh_\w+\?saved=(active|inactive)$/, { timeout: 10_000 });
    await waitForHydration(page);
    await page.getByRole('button', { name: 'Reveal' }).click();
    const secretField = page.getByTestId('signing-secret');
    await waitUntil('the secret to show', async () => /^whsec_[A-Za-z0-9+/]{43}=$/.test(await secretField.inputValue()));
    const secret = await secretField.inputValue();
    const detail = page.url();

    // The guide, filled in for this webhook; "Copy" puts exactly the code shown on the clipboard.
    await page.getByRole('link', { name: 'Integration guide' }).click();
    await page.waitForURL(/\/integrate$/, { timeout: 10_000 });
    await waitForHydration(page);
    const shown = await page.getByTestId(`snippet-${language}`).textContent();
    assert.ok(shown.includes('X-Partner-Key') && shown.includes('/hooks/kyc'), 'filled in with the header and the path');
    assert.ok(!shown.includes(secret), 'the secret is never in the code');
    await page.getByTestId(`copy-${language}`).click();
    await page.getByText('Copied to the clipboard.').waitFor({ timeout: 10_000 });
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, shown);

    const receiver = runReceiver(t, language, copied, { WEBHOOK_SECRET: secret, WEBHOOK_AUTH_VALUE: authValue, PORT: String(port) });
    await waitUntil(`the ${language} receiver to listen`, async () => {
      assert.ok(!receiver.exited(), `the receiver exited:\n${receiver.output()}`);
      return fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
    }, 30_000);

    // A real delivery: Test Webhook sends verification.completed; the code accepts and handles it.
    await page.goto(detail);
    await waitForHydration(page);
    await page.getByRole('button', { name: 'Test Webhook' }).click();
    await waitUntil('the delivery to pass through', () => proxy.passed.length === 1);
    const delivery = proxy.passed[0];
    assert.deepEqual(delivery.answer, { status: 200, text: 'ok' }, receiver.output());
    await page.getByText('Success: Your endpoint is working correctly.').waitFor({ timeout: 15_000 });
    const eventId = delivery.headers['webhook-id'];
    await waitUntil('the event to be handled', () => receiver.output().includes(`received verification.completed ${eventId}`));

    // The same request with one thing changed is refused, and names why.
    const event = JSON.parse(delivery.body);
    const tampered = JSON.stringify({ ...event, data: { ...event.data, status: 'FAILED' } });
    const refused = await post(port, delivery.path, delivery.headers, tampered);
    assert.equal(refused.status, 400);
    assert.match(refused.text, /^invalid signature/);
    const { 'x-partner-key': _key, ...withoutAuth } = delivery.headers;
    assert.equal((await post(port, delivery.path, withoutAuth, delivery.body)).status, 401);
    const later = { ...delivery.headers, 'webhook-timestamp': String(Number(delivery.headers['webhook-timestamp']) + 1) };
    const standard = await post(port, delivery.path, later, delivery.body);
    assert.equal(standard.status, 400, 'the Standard Webhooks signature covers the timestamp');
    assert.match(standard.text, /^invalid signature: /);
    // The untouched request again: a duplicate, accepted and not handled twice.
    assert.deepEqual(await post(port, delivery.path, delivery.headers, delivery.body), { status: 200, text: 'duplicate' });
    assert.equal(receiver.output().split(`received verification.completed ${eventId}`).length, 2, 'handled once');
  });
}

test('the signature checker says a pasted request is genuine, names a re-serialised body, and checks a logged attempt', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  t.after(() => page.close());
  await logIn(page, shared.portal);
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.goto(`${shared.portal.url}/webhooks/new`);
  await waitForHydration(page);
  await page.getByLabel('Webhook URL').fill(receiver.url);
  await page.getByRole('button', { name: 'Save Webhook' }).click();
  await page.waitForURL(/\/webhooks\/wh_\w+\?saved=(active|inactive)$/, { timeout: 10_000 });
  const webhookId = new URL(page.url()).pathname.split('/').pop();
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Test Webhook' }).click();
  await waitUntil('the test to arrive', () => receiver.received.length === 1);
  const { headers, body } = receiver.received[0];
  const pasted = Object.entries(headers).map(([name, value]) => `${name}: ${value}`).join('\n');

  await page.getByRole('link', { name: 'Signature checker' }).click();
  await page.waitForURL('**/tools/signature', { timeout: 10_000 });
  await waitForHydration(page);
  await page.getByLabel('Webhook', { exact: true }).selectOption(webhookId);
  await page.getByLabel('Headers, one per line').fill(pasted);
  await page.getByLabel('Body, exactly as received').fill(body);
  await page.getByRole('button', { name: 'Check signature' }).click();
  const report = page.getByTestId('signature-report');
  await report.getByText('Genuine: this body carries a signature of this webhook.').waitFor({ timeout: 10_000 });
  for (const check of ['x-webhook-signature', 'webhook-signature', 'webhook-timestamp']) {
    assert.match(await report.getByTestId(`check-${check}`).textContent(), /Pass/, check);
  }

  // The same JSON, pretty-printed as a framework would: the checker names the cause.
  await page.getByLabel('Body, exactly as received').fill(JSON.stringify(JSON.parse(body), null, 2));
  await page.getByRole('button', { name: 'Check signature' }).click();
  await report.getByText('Not verified').waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('likely-cause').textContent(), /re-serialised/);

  // From the delivery log: the attempt as it was sent.
  await page.goto(`${shared.portal.url}/webhooks/${webhookId}/logs`);
  await waitForHydration(page);
  const row = page.getByTestId('attempt-row').first();
  await row.waitFor({ timeout: 10_000 });
  await row.getByRole('link').first().click();
  await page.waitForURL(/\/logs\/att_[0-9A-Z]{26}$/, { timeout: 10_000 });
  await page.getByRole('link', { name: "Check this request's signatures" }).click();
  await page.waitForURL(/\/tools\/signature\?attempt=att_/, { timeout: 10_000 });
  await page.getByText('Genuine: this body carries a signature of this webhook.').waitFor({ timeout: 10_000 });
});

test('the request inspector: a capture URL, copied into a webhook, shows a test delivery and a stranger\'s request as they arrive, without reloading', async (t) => {
  const context = await shared.browser.newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
  t.after(() => context.close());
  const watching = await context.newPage();
  await logIn(watching, shared.portal);
  await watching.waitForURL('**/webhooks', { timeout: 10_000 });
  await waitForHydration(watching);
  await watching.getByRole('link', { name: 'Request inspector' }).click();
  await watching.waitForURL('**/inspectors', { timeout: 10_000 });
  await waitForHydration(watching);
  await watching.getByRole('button', { name: 'Create a capture URL' }).click();
  await watching.waitForURL(/\/inspectors\/ins_[0-9A-Z]{26}$/, { timeout: 10_000 });
  await waitForHydration(watching);
  await watching.getByTestId('no-requests').waitFor({ timeout: 10_000 });
  await watching.getByTestId('copy-url').click();
  await watching.getByText('Copied to the clipboard.').waitFor({ timeout: 10_000 });
  const url = await watching.evaluate(() => navigator.clipboard.readText());
  assert.equal(url, (await watching.getByTestId('capture-url').textContent()).trim());
  assert.match(url, /\/inspect\/ins_[0-9A-Z]{26}$/);

  // In another tab: a webhook pointing at it, and a test.
  const editing = await context.newPage();
  await editing.goto(`${shared.portal.url}/webhooks/new`);
  await waitForHydration(editing);
  await editing.getByLabel('Webhook URL').fill(url);
  await editing.getByRole('button', { name: 'Save Webhook' }).click();
  await editing.waitForURL(/\/webhooks\/wh_\w+\?saved=(active|inactive)$/, { timeout: 10_000 });
  const webhookId = new URL(editing.url()).pathname.split('/').pop();
  await waitForHydration(editing);
  await editing.getByRole('button', { name: 'Test Webhook' }).click();
  await editing.getByText('Success: Your endpoint is working correctly.').waitFor({ timeout: 15_000 });

  // The first tab, never reloaded, shows it: signed by that webhook, with its headers and body.
  const captured = watching.getByTestId('captured-request');
  await captured.first().waitFor({ timeout: 15_000 });
  assert.equal(await captured.count(), 1);
  assert.equal(await watching.getByTestId('no-requests').count(), 0);
  const first = captured.first();
  assert.match(await first.getByTestId('verdict').textContent(), new RegExp(`Signature verified \\(${webhookId}\\)`));
  await first.locator('summary').click();
  const body = JSON.parse(await first.getByTestId('captured-body').textContent());
  assert.equal(body.type, 'verification.completed');
  await first.getByText('x-webhook-signature').first().waitFor();
  await first.getByTestId('signature-report').getByText('Genuine').waitFor();

  // Anyone with the URL can send to it; the forged request shows on top, not verified, and the
  // opened one stays open.
  const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"forged":true}' });
  assert.equal(answer.status, 200);
  await waitUntil('the second request to show', async () => (await captured.count()) === 2);
  assert.match(await captured.first().getByTestId('verdict').textContent(), /Signature not verified/);
  assert.ok(await captured.nth(1).locator('details').evaluate((d) => d.open), 'the opened request stays open');
});
