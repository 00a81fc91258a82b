// Passkeys in a real browser: Chromium's DevTools virtual authenticator (a CTAP2 platform
// authenticator that holds discoverable credentials and verifies the user) stands in for a
// phone or laptop. The account is created by run.sh (PASSKEY_EMAIL / PASSKEY_PASSWORD).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.TESSERA_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const EMAIL = process.env.PASSKEY_EMAIL ?? 'passkey@example.com';
const PASSWORD = process.env.PASSKEY_PASSWORD ?? '';
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

async function readAuthTime(page) {
  const text = (await page.locator('#auth-time').textContent()).trim();
  return Number(/^(\d+)/.exec(text)[1]);
}

test('register a passkey, sign out, sign in with it alone, and reauthenticate with it', { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  try {
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

    // 1. Password sign-in; Tessera offers a passkey; add it.
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-sign-in').click();
    await page.waitForURL((u) => pathOf(u) === '/login');
    await page.locator('#email').fill(EMAIL);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#login-form button[type="submit"]').click();
    await page.waitForURL((u) => pathOf(u) === '/passkeys/offer');
    await page.locator('#passkey-add').click();
    await page.waitForURL((u) => pathOf(u) === '/demo');
    await page.locator('#highlights').waitFor();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1, 'the authenticator holds one credential');
    assert.equal(credentials[0].isResidentCredential, true, 'the passkey is discoverable');

    // 2. The account page lists it, with its name and use.
    await page.goto(`${BASE_URL}/account`);
    await page.locator('#passkeys tr[data-passkey]').first().waitFor();
    assert.equal(await page.locator('#passkeys tr[data-passkey]').count(), 1);
    await shot(page, '10-account-passkeys.png');

    // 3. Sign out of the demo and of Tessera.
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-logout').click();
    await page.locator('#demo-sign-in').waitFor();

    // 4. Sign in with the passkey alone: no email, no password (usernameless).
    // The page starts a conditional (autofill) request on load, and Chromium's virtual
    // authenticator may answer it by itself at once (the autofill path), so the sign-in page
    // can be gone before the test looks at it. When it has not answered, the "Sign in with a
    // passkey" button runs the modal discoverable request instead. The page's autocomplete
    // attribute is asserted by tests/passkeys.rs.
    const atSignIn = page.waitForURL((u) => pathOf(u) === '/login', { waitUntil: 'commit' });
    await page.locator('#demo-sign-in').click();
    await atSignIn;
    if (pathOf(page.url()) === '/login') await shot(page, '11-sign-in-with-passkey.png').catch(() => {});
    const signedIn = page.waitForURL((u) => pathOf(u) === '/demo');
    await page.locator('#passkey-sign-in').click({ timeout: 2000 }).catch(() => {});
    await signedIn;
    await page.locator('#highlights').waitFor();
    const amr = await page.locator('#amr').textContent();
    assert.match(amr, /\b(hwk|swk)\b/, `amr ${amr} names the key`);
    assert.match(amr, /\bmfa\b/, 'user verification makes it multi-factor');
    const claims = await page.locator('#claims').textContent();
    assert.match(claims, new RegExp(EMAIL.replace('.', '\\.')));
    const first = await readAuthTime(page);
    await shot(page, '12-demo-signed-in-with-passkey.png');

    // 5. Reauthenticate with the passkey for the sensitive operation (after the window; see
    // signin.test.mjs for why 5 s needs 6.5 s of waiting at one-second resolution).
    await page.waitForTimeout(6500);
    await page.locator('#sensitive-operation').click();
    await page.waitForURL((u) => pathOf(u) === '/login');
    assert.equal(await page.locator('h1').textContent(), "Confirm it's you");
    await page.locator('#passkey-first #passkey-sign-in').waitFor();
    await shot(page, '13-reauthenticate-with-passkey.png');
    await page.locator('#passkey-sign-in').click();
    await page.waitForURL((u) => pathOf(u) === '/demo');
    await page.locator('#operation-result').waitFor();
    const after = Number(await page.locator('#auth-time-after').textContent());
    assert.ok(after > first, `auth_time advanced from ${first} to ${after}`);
    await shot(page, '14-sensitive-done-with-passkey.png');
  } catch (error) {
    await shot(page, 'failed-passkeys.png').catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
});
