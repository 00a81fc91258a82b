// Account recovery in a real browser. The account (created by run.sh: RECOVERY_EMAIL /
// RECOVERY_PASSWORD, so the shared demo user keeps its shape) is first made passkey-only on
// the account page, with one of Chromium's DevTools virtual authenticators. That device is
// then "lost": a second browser context with its own, empty authenticator recovers the
// account by an emailed code (read from the demo outbox) and registers a new passkey; the
// old browser's session is over.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.TESSERA_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const EMAIL = process.env.RECOVERY_EMAIL ?? 'recover@example.com';
const PASSWORD = process.env.RECOVERY_PASSWORD ?? '';
const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const TIMEOUT = 15_000;

let browser;

before(async () => {
  assert.ok(BASE_URL && PASSWORD, 'run through tests/e2e/run.sh');
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
});

const pathOf = (url) => new URL(url).pathname;
const shot = (page, name) => page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });

async function withAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

test('a passkey-only account recovers by email code and registers a new passkey', { timeout: 120_000 }, async () => {
  // 1. Make the account passkey-only: password sign-in, add a passkey, remove the password.
  const oldContext = await browser.newContext({ viewport: { width: 1000, height: 1100 } });
  oldContext.setDefaultTimeout(TIMEOUT);
  const newContext = await browser.newContext({ viewport: { width: 1000, height: 1100 } });
  newContext.setDefaultTimeout(TIMEOUT);
  try {
    const old = await oldContext.newPage();
    await withAuthenticator(oldContext, old);
    await old.goto(`${BASE_URL}/account/login`);
    await old.locator('#email').fill(EMAIL);
    await old.locator('#password').fill(PASSWORD);
    await old.locator('#login-form button[type="submit"]').click();
    await old.waitForURL((u) => ['/passkeys/offer', '/account'].includes(pathOf(u)));
    await old.goto(`${BASE_URL}/account`);
    await old.locator('#passkey-add').click();
    await old.locator('#passkeys tr[data-passkey]').first().waitFor();
    await old.locator('#password-remove').click();
    await old.waitForURL((u) => pathOf(u) === '/account');
    assert.match(await old.locator('#account-notice').textContent(), /password was removed/);
    assert.doesNotMatch(await old.locator('#methods').textContent(), /Password/);
    await shot(old, '40-recovery-passkey-only-account.png');

    // 2. The device is lost. A new browser, with an empty authenticator, starts signing in
    //    to the demo app and follows "Forgot your password or lost your passkey?".
    const page = await newContext.newPage();
    const { cdp, authenticatorId } = await withAuthenticator(newContext, page);
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-sign-in').click();
    await page.waitForURL((u) => pathOf(u) === '/login');
    await page.locator('#forgot').click();
    await page.waitForURL((u) => pathOf(u) === '/recover');
    await page.locator('#recover-email').fill(EMAIL);
    await shot(page, '41-recovery-start.png');
    await page.locator('#recover-form button[type="submit"]').click();
    await page.locator('#recover-code-form').waitFor();
    assert.match(await page.locator('#recover-sent').textContent(), /r\*\*\*@example\.com/);

    const outbox = await newContext.newPage();
    let code;
    for (let i = 0; i < 50 && !code; i++) {
      await outbox.goto(`${BASE_URL}/demo/outbox`);
      const bodies = await outbox.locator(`article[data-to="${EMAIL}"] .outbox-body`).allTextContents();
      const recovery = bodies.find((b) => b.includes('account recovery code'));
      code = recovery ? /\b(\d{6})\b/.exec(recovery)?.[1] : undefined;
      if (!code) await outbox.waitForTimeout(100);
    }
    assert.ok(code, 'the recovery code reached the outbox');
    await outbox.close();

    await page.locator('#recover-code').fill(code);
    await shot(page, '42-recovery-code.png');
    await page.locator('#recover-code-form button[type="submit"]').click();
    await page.waitForURL((u) => pathOf(u) === '/recover/new');
    assert.equal(await page.locator('#recover-account').textContent(), EMAIL);
    await page.locator('#passkey-name').fill('Replacement phone');
    await shot(page, '43-recovery-new-passkey.png');
    await page.locator('#passkey-add').click();

    // 3. Back at the demo app, signed in; the new authenticator holds the new passkey.
    await page.waitForURL((u) => pathOf(u) === '/demo');
    await page.locator('#highlights').waitFor();
    await shot(page, '44-recovery-signed-in.png');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1, 'a new passkey was created');
    await page.goto(`${BASE_URL}/account`);
    assert.match(await page.locator('#methods').textContent(), /Replacement phone/);

    // 4. The old browser's session ended with the recovery.
    await old.goto(`${BASE_URL}/account`);
    await old.waitForURL((u) => pathOf(u) === '/login');
  } finally {
    await oldContext.close();
    await newContext.close();
  }
});
