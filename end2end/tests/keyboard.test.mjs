// The journey of the partner docs with the keyboard alone: sign in, create a webhook, test
// it, view its logs, delete it. Every control reached on the way shows where the focus is.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePortal, waitForHydration, startReceiver, waitUntil } from './support.mjs';

const shared = usePortal();

/** Presses Tab until the focused element's accessible text matches `name`; each element the
 * focus lands on must show it: a ring (outline or shadow) that the element loses when the
 * focus leaves it, so a shadow it always has does not count. */
async function tabTo(page, name, max = 80) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const ring = () => {
        const style = getComputedStyle(el);
        const outline = style.outlineStyle !== 'none' && style.outlineWidth !== '0px';
        return { shown: style.boxShadow !== 'none' || outline, look: `${style.boxShadow} ${outline ? style.outline : ''}` };
      };
      const focusedRing = ring();
      // Without the focus (the element's own look), then focused again, so Tab goes on from here.
      el.blur();
      const unfocused = ring();
      el.focus();
      const label = el.labels?.[0]?.textContent ?? '';
      return {
        text: `${el.getAttribute('aria-label') ?? ''} ${label} ${el.textContent ?? ''} ${el.value ?? ''}`.replace(/\s+/g, ' ').trim(),
        tag: el.tagName,
        visible: focusedRing.shown && focusedRing.look !== unfocused.look,
      };
    });
    if (!focused) continue;
    assert.ok(focused.visible, `the focus on ${focused.tag} "${focused.text}" is not visible`);
    if (name.test(focused.text)) return;
  }
  throw new Error(`pressed Tab ${max} times without reaching ${name}`);
}

test('sign in, create, test, view logs and delete with the keyboard alone', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, text: 'ok' }));
  const page = await shared.browser.newPage();
  await page.goto(`${shared.portal.url}/login`);
  await waitForHydration(page);
  await tabTo(page, /Email/);
  await page.keyboard.type(shared.portal.partner.email);
  await tabTo(page, /^Password/);
  await page.keyboard.type(shared.portal.partner.password);
  await page.keyboard.press('Enter');
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await waitForHydration(page);

  await tabTo(page, /^Create Webhook$/);
  await page.keyboard.press('Enter');
  await page.waitForURL('**/webhooks/new', { timeout: 10_000 });
  await waitForHydration(page);
  await tabTo(page, /Webhook URL/);
  await page.keyboard.type(receiver.url);
  await tabTo(page, /^Save Webhook$/);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/webhooks\/wh_\w+\?saved=active$/, { timeout: 10_000 });
  await waitForHydration(page);

  await tabTo(page, /^Test Webhook$/);
  await page.keyboard.press('Enter');
  await page.getByTestId('test-result').filter({ hasText: 'Success' }).waitFor({ timeout: 15_000 });
  assert.equal(receiver.received.length, 1);

  await tabTo(page, /^View Logs$/);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/logs$/, { timeout: 10_000 });
  await waitForHydration(page);
  await page.getByTestId('attempt-row').first().waitFor({ timeout: 10_000 });
  await page.goBack();
  await waitForHydration(page);

  // "Delete" opens its confirmation (a <details>: Enter toggles it), then "Yes, delete".
  await page.locator('body').focus();
  await tabTo(page, /^Delete$/);
  await page.keyboard.press('Enter');
  await tabTo(page, /Delete the webhook for/);
  await page.keyboard.press('Enter');
  await page.waitForURL('**/webhooks', { timeout: 10_000 });
  await page.getByText('No webhooks yet').waitFor({ timeout: 10_000 });
  await page.close();
});

test('dark mode follows the system setting', async () => {
  const context = await shared.browser.newContext({ colorScheme: 'dark' });
  const page = await context.newPage();
  await page.goto(`${shared.portal.url}/login`);
  await waitForHydration(page);
  const [background, text] = await page.evaluate(() => {
    const style = getComputedStyle(document.documentElement);
    return [style.backgroundColor, style.color];
  });
  const light = (rgb) => rgb.match(/\d+/g).slice(0, 3).reduce((sum, n) => sum + Number(n), 0) / 3;
  assert.ok(light(background) < 60, `a dark background: ${background}`);
  assert.ok(light(text) > 180, `light text: ${text}`);
  await context.close();
});
