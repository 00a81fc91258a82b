// The admin console in a real browser: the demo user (seeded as an admin of the default
// organization) signs in at /admin, turns password sign-in off and email and text codes on,
// saves, and the console shows the saved configuration; then a new browser signs in to the
// demo app with an email code read from the demo outbox, on a sign-in page that shows the
// code tabs and no password form; then the users page. The test restores the original
// methods at the end, so suites run after it still find the password form.
// Run through tests/e2e/run.sh (it sets TESSERA_URL and CHROMIUM_PATH).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.TESSERA_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DEMO_EMAIL = 'demo@example.com';
const DEMO_PASSWORD = 'tessera-demo';
const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const ACTION_TIMEOUT = 15_000;
const TEST_TIMEOUT = 60_000;

let browser;

before(async () => {
  assert.ok(BASE_URL, 'set TESSERA_URL to the server under test');
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
});

const pathOf = (url) => new URL(url).pathname;

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });
}

/** Opens /admin signed out, signs the demo user in on the hosted page, and lands on /admin. */
async function signInToConsole(page) {
  await page.goto(`${BASE_URL}/admin`);
  await page.waitForURL((url) => pathOf(url) === '/login');
  await page.locator('#email').fill(DEMO_EMAIL);
  await page.locator('#password').fill(DEMO_PASSWORD);
  await page.locator('#login-form button[type="submit"]').click();
  // After a password sign-in Tessera may offer to add a passkey: say "not now".
  await page.waitForURL((url) => pathOf(url) === '/admin' || pathOf(url) === '/passkeys/offer');
  if (pathOf(page.url()) === '/passkeys/offer') {
    await page.locator('#passkey-not-now').click();
    await page.waitForURL((url) => pathOf(url) === '/admin');
  }
  await page.locator('#methods-form').waitFor();
}

/** A new browser signs in to the demo app with an email code, with no password on offer. */
async function signInWithEmailCode() {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  const page = await context.newPage();
  try {
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-sign-in').click();
    await page.waitForURL((url) => pathOf(url) === '/login');
    await page.locator('#otp-form').waitFor();
    assert.equal(await page.locator('#login-form').count(), 0, 'no password form');
    assert.equal(await page.locator('#tab-password').count(), 0, 'no password tab');
    assert.equal(await page.locator('#tab-email_otp').getAttribute('aria-current'), 'page');
    await page.locator('#tab-phone_otp').waitFor();
    await shot(page, 'signin-code-tabs.png');

    await page.locator('#otp-address').fill(DEMO_EMAIL);
    await page.locator('#otp-form button[type="submit"]').click();
    await page.locator('#otp-verify-form').waitFor();
    assert.match(await page.locator('#otp-sent').textContent(), /d\*\*\*@example\.com/);

    // The demo outbox shows the message that would have been emailed.
    const outbox = await context.newPage();
    let code;
    for (let i = 0; i < 50 && !code; i++) {
      await outbox.goto(`${BASE_URL}/demo/outbox`);
      const bodies = await outbox.locator(`article[data-to="${DEMO_EMAIL}"] .outbox-body`).allTextContents();
      code = bodies.length ? /\b(\d{6})\b/.exec(bodies[0])?.[1] : undefined;
      if (!code) await outbox.waitForTimeout(100);
    }
    assert.ok(code, 'the code reached the outbox');
    await outbox.close();

    await page.locator('#otp-code').fill(code);
    await page.locator('#otp-verify-form button[type="submit"]').click();
    await page.waitForURL((url) => pathOf(url) === '/demo');
    assert.match(await page.locator('#amr').textContent(), /otp/);
    assert.match(await page.locator('#amr').textContent(), /email/);
    await shot(page, 'signin-code-done.png');
  } catch (err) {
    await shot(page, 'failed-admin-email-code.png').catch(() => {});
    throw err;
  } finally {
    await context.close();
  }
}

/** Sets the method checkboxes named in `on` and clears the others, then saves. */
async function saveMethods(page, on) {
  for (const key of ['password', 'passkey', 'qr', 'email_otp', 'phone_otp']) {
    await page.locator(`#method-${key}`).setChecked(on.includes(key));
  }
  await page.locator('#methods-save').click();
  await page.waitForURL((url) => pathOf(url) === '/admin' && url.searchParams.get('notice') === 'methods-saved');
  await page.locator('#admin-notice').waitFor();
}

test('an admin turns password off and email codes on in the console', { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  const page = await context.newPage();
  const violations = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) violations.push(msg.text());
  });
  let restore = false;
  try {
    await signInToConsole(page);
    assert.equal((await page.locator('#admin-org').textContent()).trim(), 'Default organization');
    assert.equal((await page.locator('#admin-email').textContent()).trim(), DEMO_EMAIL);
    const before = {};
    for (const key of ['password', 'passkey', 'qr', 'email_otp', 'phone_otp']) {
      before[key] = await page.locator(`#method-${key}`).isChecked();
    }
    assert.equal(before.password, true, 'password starts enabled');
    restore = true;

    // Password off needs another method someone can use: email codes always qualify.
    await saveMethods(page, ['passkey', 'qr', 'email_otp', 'phone_otp']);
    assert.equal(await page.locator('#method-password').isChecked(), false);
    assert.equal(await page.locator('#method-email_otp').isChecked(), true);
    assert.match(await page.locator('#admin-notice').textContent(), /saved/);
    await shot(page, 'admin-methods.png');

    await signInWithEmailCode();

    // The lock-out guard explains itself and keeps the form as submitted.
    await page.locator('#method-email_otp').setChecked(false);
    await page.locator('#method-phone_otp').setChecked(false);
    await page.locator('#method-passkey').setChecked(false);
    await page.locator('#methods-save').click();
    await page.locator('#methods-error').waitFor();
    assert.match(await page.locator('#methods-error').textContent(), /QR sign-in cannot be the only method/);
    await shot(page, 'admin-methods-refused.png');

    await page.locator('nav a[href="/admin/users"]').click();
    await page.waitForURL((url) => pathOf(url) === '/admin/users');
    const emails = await page.locator('#users .user-email').allTextContents();
    assert.ok(emails.includes(DEMO_EMAIL), `the users page lists ${DEMO_EMAIL}: ${emails}`);
    await shot(page, 'admin-users.png');

    // No inline scripts or handlers on the console, and no CSP violations.
    const inline = await page.locator('script:not([src])').count();
    assert.equal(inline, 0, 'no inline <script>');
    assert.deepEqual(violations, [], 'the console triggers no CSP violations');

    restore = false;
    // Put the original methods back for the suites that follow.
    await page.goto(`${BASE_URL}/admin`);
    await saveMethods(page, Object.keys(before).filter((k) => before[k]));
    assert.equal(await page.locator('#method-password').isChecked(), true);
  } catch (err) {
    await shot(page, 'failed-admin.png').catch(() => {});
    // A failure must not leave the shared server without passwords for the suites after it.
    if (restore) {
      await page.goto(`${BASE_URL}/admin`).catch(() => {});
      await saveMethods(page, ['password', 'passkey', 'qr']).catch(() => {});
    }
    throw err;
  } finally {
    await context.close();
  }
});
