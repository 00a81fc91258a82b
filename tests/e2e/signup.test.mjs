// Self-service sign-up in a real browser: an admin opens sign-up for the default organization
// in the console; a new browser with Chromium's DevTools virtual authenticator starts a sign-in
// at the demo app, chooses "Create an account", proves its address with the code from the demo
// outbox, and creates the account with a passkey only. It lands back in the demo app signed in,
// the account holds no password, and the passkey alone signs it in again. Then the device is
// lost: the same account recovers by an emailed code and registers a new passkey. The console's sign-up
// mode is put back afterwards so the suites after this one find the server as it was.
// Run through tests/e2e/run.sh (it sets TESSERA_URL and CHROMIUM_PATH).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.TESSERA_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ADMIN_EMAIL = 'demo@example.com';
const ADMIN_PASSWORD = 'tessera-demo';
const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');
const TIMEOUT = 15_000;

let browser;

before(async () => {
  assert.ok(BASE_URL, 'run through tests/e2e/run.sh');
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

async function newContext() {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  context.setDefaultNavigationTimeout(TIMEOUT);
  return context;
}

/** Signs the demo admin in to /admin (declining the passkey offer) in `page`. */
async function signInToConsole(page) {
  await page.goto(`${BASE_URL}/admin`);
  await page.waitForURL((u) => pathOf(u) === '/login');
  await page.locator('#email').fill(ADMIN_EMAIL);
  await page.locator('#password').fill(ADMIN_PASSWORD);
  await page.locator('#login-form button[type="submit"]').click();
  await page.waitForURL((u) => pathOf(u) === '/admin' || pathOf(u) === '/passkeys/offer');
  if (pathOf(page.url()) === '/passkeys/offer') {
    await page.locator('#passkey-not-now').click();
    await page.waitForURL((u) => pathOf(u) === '/admin');
  }
  await page.locator('#methods-form').waitFor();
}

/** Picks the sign-up mode radio `mode` on the console's methods form and saves it. */
async function saveSignupMode(page, mode) {
  await page.goto(`${BASE_URL}/admin`);
  await page.locator(`#signup-${mode}`).check();
  await page.locator('#methods-save').click();
  await page.waitForURL((u) => pathOf(u) === '/admin' && u.searchParams.get('notice') === 'methods-saved');
  assert.equal(await page.locator(`#signup-${mode}`).isChecked(), true, `sign-up is ${mode}`);
}

/** The 6-digit code in the newest outbox message to `to`, polled until it arrives. */
async function outboxCode(context, to, marker = '') {
  const outbox = await context.newPage();
  try {
    for (let i = 0; i < 50; i++) {
      await outbox.goto(`${BASE_URL}/demo/outbox`);
      const bodies = await outbox.locator(`article[data-to="${to}"] .outbox-body`).allTextContents();
      const body = bodies.find((b) => b.includes(marker));
      const code = body ? /\b(\d{6})\b/.exec(body)?.[1] : undefined;
      if (code) return code;
      await outbox.waitForTimeout(100);
    }
    throw new Error(`no code for ${to} reached the outbox`);
  } finally {
    await outbox.close();
  }
}

/** The demo page's "All ID token claims" table as an object of strings. */
async function claimsOf(page) {
  const rows = await page.locator('#claims tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.querySelector('th')?.textContent.trim(), tr.querySelector('td')?.textContent.trim()]));
  return Object.fromEntries(rows);
}

test('sign up with a passkey only, land in the app, and sign in again with the passkey', { timeout: 120_000 }, async () => {
  const adminContext = await newContext();
  const admin = await adminContext.newPage();
  let original;
  const context = await newContext();
  const page = await context.newPage();
  const email = `signup-${Date.now()}@example.com`;
  try {
    // 1. The admin opens sign-up to anyone (no domain restriction) in the console.
    await signInToConsole(admin);
    original = await admin.locator('input[name="signup_mode"]:checked').getAttribute('value');
    assert.equal(await admin.locator('#signup-domains').inputValue(), '', 'no domain restriction');
    await saveSignupMode(admin, 'open');
    await shot(admin, '50-signup-admin-open.png');

    // 2. A new browser with a passkey-capable authenticator starts signing in to the demo app.
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
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-sign-in').click();
    await page.waitForURL((u) => pathOf(u) === '/login');
    await page.locator('#signup-link').click();
    await page.waitForURL((u) => pathOf(u) === '/signup');

    // 3. Email, then the code from the outbox.
    await page.locator('#signup-email').fill(email);
    await shot(page, '50-signup-email.png');
    await page.locator('#signup-email-form button[type="submit"]').click();
    await page.locator('#signup-verify-form').waitFor();
    const signupCodeSentAt = Date.now();
    const code = await outboxCode(context, email);
    await page.locator('#signup-code').fill(code);
    await shot(page, '50-signup-code.png');
    await page.locator('#signup-verify-form button[type="submit"]').click();
    await page.waitForURL((u) => pathOf(u) === '/signup/credential');
    assert.match(await page.locator('#signup-verified').textContent(), new RegExp(email.replace(/\./g, '\\.')));
    await shot(page, '50-signup-credential.png');

    // 4. Passkey only: the virtual authenticator creates it and the browser returns to the app.
    await page.locator('#signup-passkey-create').click();
    await page.waitForURL((u) => pathOf(u) === '/demo');
    await page.locator('#highlights').waitFor();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1, 'the authenticator holds the new passkey');
    assert.equal(credentials[0].isResidentCredential, true, 'the passkey is discoverable');
    const claims = await claimsOf(page);
    assert.equal(claims.email, email, 'the ID token names the new address');
    assert.ok(claims.sub, 'the ID token has a subject');
    const amr = await page.locator('#amr').textContent();
    assert.match(amr, /\b(hwk|swk)\b/, `amr ${amr} names the key`);
    assert.match(amr, /\bmfa\b/, `amr ${amr}: user verification makes it multi-factor`);
    assert.doesNotMatch(amr, /\bpwd\b/, `amr ${amr} names no password`);
    await shot(page, '50-signup-demo-signed-in.png');

    // 5. The account lists the passkey and no password.
    await page.goto(`${BASE_URL}/account`);
    await page.locator('#methods').waitFor();
    assert.equal((await page.locator('#account-email').textContent()).trim(), email);
    const ways = await page.locator('#methods li').allTextContents();
    assert.ok(ways.some((w) => w.startsWith('Passkey')), `ways to sign in: ${ways}`);
    assert.ok(!ways.some((w) => /password/i.test(w)), `no password among the ways to sign in: ${ways}`);
    assert.equal(await page.locator('#passkeys tr[data-passkey]').count(), 1);
    await shot(page, '50-signup-account.png');

    // 6. Sign out of the demo and of Tessera.
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-logout').click();
    await page.locator('#demo-sign-in').waitFor();

    // 7. Sign in again with the passkey alone. The sign-in page's autofill (conditional)
    // request may be answered by the virtual authenticator at once; only when it has not
    // left the page after a moment does the test press "Sign in with a passkey" (the modal
    // request). Pressing it while the autofill answer is in flight finishes the same request
    // twice, and the second resume then finds it used ("Sign-in request expired").
    const atSignIn = page.waitForURL((u) => pathOf(u) === '/login', { waitUntil: 'commit' });
    await page.locator('#demo-sign-in').click();
    await atSignIn;
    const autofilled = await page
      .waitForURL((u) => pathOf(u) !== '/login', { timeout: 3000, waitUntil: 'commit' })
      .then(() => true, () => false);
    if (!autofilled) {
      await shot(page, '50-signup-sign-in-with-passkey.png');
      await page.locator('#passkey-sign-in').click();
    }
    await page.waitForURL((u) => pathOf(u) === '/demo');
    await page.locator('#highlights').waitFor();
    const again = await claimsOf(page);
    assert.equal(again.sub, claims.sub, 'the same account signed in again');
    assert.equal(again.email, email);
    assert.match(await page.locator('#amr').textContent(), /\b(hwk|swk)\b/);
    await shot(page, '50-signup-passkey-sign-in-again.png');

    // 8. A password sign-in for the new address fails whatever the password: it has none.
    const other = await newContext();
    const otherPage = await other.newPage();
    try {
      await otherPage.goto(`${BASE_URL}/demo`);
      await otherPage.locator('#demo-sign-in').click();
      await otherPage.waitForURL((u) => pathOf(u) === '/login');
      await otherPage.locator('#email').fill(email);
      await otherPage.locator('#password').fill('any-password-at-all');
      await otherPage.locator('#login-form button[type="submit"]').click();
      await otherPage.locator('#login-error').waitFor();
      assert.equal(pathOf(otherPage.url()), '/login', 'still on the sign-in page');
      await shot(otherPage, '50-signup-no-password.png');
    } finally {
      await other.close();
    }

    // 9. The same user loses the device: a new browser with an empty authenticator follows
    //    "Forgot your password or lost your passkey?" from the demo app's sign-in, proves the
    //    address with the emailed recovery code and registers a new passkey. It lands in the
    //    app as the same account, and the first browser's session is over.
    const lost = await newContext();
    try {
      const recovering = await lost.newPage();
      const lostCdp = await lost.newCDPSession(recovering);
      await lostCdp.send('WebAuthn.enable');
      const replacement = await lostCdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });
      await recovering.goto(`${BASE_URL}/demo`);
      await recovering.locator('#demo-sign-in').click();
      await recovering.waitForURL((u) => pathOf(u) === '/login');
      await recovering.locator('#forgot').click();
      await recovering.waitForURL((u) => pathOf(u) === '/recover');
      await recovering.locator('#recover-email').fill(email);
      // Every code to one mailbox shares one budget: at most one per 30 s per address
      // (rate_limits.otp_send_per_address), and the sign-up code went out moments ago.
      await recovering.waitForTimeout(Math.max(0, signupCodeSentAt + 31_000 - Date.now()));
      await recovering.locator('#recover-form button[type="submit"]').click();
      await recovering.locator('#recover-code-form').waitFor();
      const recoveryCode = await outboxCode(lost, email, 'account recovery code');
      await recovering.locator('#recover-code').fill(recoveryCode);
      await recovering.locator('#recover-code-form button[type="submit"]').click();
      await recovering.waitForURL((u) => pathOf(u) === '/recover/new');
      assert.equal(await recovering.locator('#recover-account').textContent(), email);
      await recovering.locator('#passkey-name').fill('Replacement phone');
      await shot(recovering, '50-signup-recovery-new-passkey.png');
      await recovering.locator('#passkey-add').click();
      await recovering.waitForURL((u) => pathOf(u) === '/demo');
      await recovering.locator('#highlights').waitFor();
      const recovered = await claimsOf(recovering);
      assert.equal(recovered.sub, claims.sub, 'the recovered account is the one that signed up');
      const { credentials: fresh } = await lostCdp.send('WebAuthn.getCredentials', {
        authenticatorId: replacement.authenticatorId,
      });
      assert.equal(fresh.length, 1, 'the new authenticator holds the new passkey');
      await shot(recovering, '50-signup-recovered.png');
      await page.goto(`${BASE_URL}/account`);
      await page.waitForURL((u) => pathOf(u) === '/login');
    } finally {
      await lost.close();
    }
  } catch (error) {
    await shot(page, 'failed-signup.png').catch(() => {});
    throw error;
  } finally {
    await context.close();
    // Put the sign-up mode back for the suites after this one; a failure here fails the test.
    try {
      if (original) await saveSignupMode(admin, original);
    } finally {
      await adminContext.close();
    }
  }
});
