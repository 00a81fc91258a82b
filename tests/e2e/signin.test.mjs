// Browser end-to-end tests for Tessera's hosted sign-in, driven through the demo relying
// party at /demo. They drive Debian's Chromium through playwright-core (no bundled browser).
//
// Run them with tests/e2e/run.sh, which builds and starts a server and sets TESSERA_URL.
// Against a server that is already running:
//   TESSERA_URL=http://127.0.0.1:8080 node --test tests/e2e/
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

/** Playwright's per-action and per-navigation timeout, in milliseconds. */
const ACTION_TIMEOUT = 15_000;
/** node:test's per-test timeout, in milliseconds. */
const TEST_TIMEOUT = 60_000;

let browser;

before(async () => {
  assert.ok(BASE_URL, 'set TESSERA_URL to the server under test, e.g. http://127.0.0.1:8080');
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * Runs `body` with a page in a fresh browser context (its own cookies), then closes the
 * context. When `body` fails, the page is saved as failed-<name>.png before the error goes on.
 */
async function withPage(name, body) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  try {
    const page = await context.newPage();
    try {
      await body(page);
    } catch (err) {
      await shot(page, `failed-${name}.png`).catch(() => {});
      throw err;
    }
  } finally {
    await context.close();
  }
}

const pathOf = (url) => new URL(url).pathname;
const isSignInPage = (url) => pathOf(url) === '/login' && url.searchParams.has('request');
const isDemoPage = (url) => pathOf(url) === '/demo';

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });
}

/** From a signed-out /demo, follow "Sign in with Tessera" to the hosted sign-in page. */
async function openSignIn(page) {
  await page.goto(`${BASE_URL}/demo`);
  await page.locator('#demo-sign-in').click();
  await page.waitForURL(isSignInPage);
  await page.locator('#login-form').waitFor();
}

/** Submits the sign-in form; the email is filled only when given. */
async function submitSignIn(page, { email, password }) {
  if (email !== undefined) await page.locator('#email').fill(email);
  await page.locator('#password').fill(password);
  await page.locator('#login-form button[type="submit"]').click();
}

/** Reads the ID token's auth_time from the demo page: the cell reads "<unix seconds> (<age>)". */
async function readAuthTime(page) {
  const text = (await page.locator('#auth-time').textContent()).trim();
  const match = /^(\d{9,11})\b/.exec(text);
  assert.ok(match, `#auth-time should start with a Unix timestamp, got ${JSON.stringify(text)}`);
  return Number(match[1]);
}

/** The demo page's table of all ID token claims, as { name: text }. */
async function readClaims(page) {
  return page.locator('#claims tr').evaluateAll((rows) =>
    Object.fromEntries(
      rows.map((tr) => [tr.querySelector('th')?.textContent.trim(), tr.querySelector('td')?.textContent.trim()]),
    ),
  );
}

/** Signs the demo user in from a fresh /demo and returns once /demo shows the result. */
async function signInFromDemo(page) {
  await openSignIn(page);
  await submitSignIn(page, { email: DEMO_EMAIL, password: DEMO_PASSWORD });
  await passOfferAndWaitForDemo(page);
}

/** After a password sign-in Tessera may offer to add a passkey: say "not now". */
async function passOfferAndWaitForDemo(page) {
  await page.waitForURL((url) => isDemoPage(url) || pathOf(url) === '/passkeys/offer');
  if (pathOf(page.url()) === '/passkeys/offer') {
    await page.locator('#passkey-not-now').click();
    await page.waitForURL(isDemoPage);
  }
  await page.locator('#highlights').waitFor();
}

test('signs in the demo user through the hosted page and returns to /demo', { timeout: TEST_TIMEOUT }, async () => {
  await withPage('sign-in', async (page) => {
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-sign-in').click();
    await page.waitForURL(isSignInPage);
    assert.equal(await page.locator('h1').textContent(), 'Sign in');
    assert.equal(await page.locator('#login-error').count(), 0, 'no error before any attempt');
    await shot(page, '01-sign-in.png');

    const before = Math.floor(Date.now() / 1000);
    await submitSignIn(page, { email: DEMO_EMAIL, password: DEMO_PASSWORD });
    // An account without a passkey is offered one after a password sign-in.
    await page.waitForURL((url) => pathOf(url) === '/passkeys/offer');
    await shot(page, '01b-passkey-offer.png');
    await passOfferAndWaitForDemo(page);

    const authTime = await readAuthTime(page);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(authTime >= now - 120 && authTime <= now + 5, `auth_time ${authTime} should be within the last 2 minutes of ${now}`);
    assert.ok(authTime >= before - 5, `auth_time ${authTime} should not predate the sign-in (started ${before})`);
    assert.equal((await page.locator('#can-reauthenticate').textContent()).trim(), 'true');
    assert.match(await page.locator('#amr').textContent(), /\bpwd\b/);

    const claims = await readClaims(page);
    assert.equal(claims.iss, BASE_URL, 'iss claim is the issuer');
    assert.equal(claims.aud, 'tessera-demo', 'aud claim is the demo client');
    assert.equal(claims.email, DEMO_EMAIL, 'email claim is the demo user');
    assert.ok(claims.sub, 'sub claim is present');
    assert.equal(claims.auth_time, String(authTime), 'claims table agrees with #auth-time');
    await shot(page, '02-demo-signed-in.png');
  });
});

test('a wrong password shows the generic error and stays on the sign-in page', { timeout: TEST_TIMEOUT }, async () => {
  await withPage('wrong-password', async (page) => {
    await openSignIn(page);
    const visited = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) visited.push(frame.url());
    });

    await submitSignIn(page, { email: DEMO_EMAIL, password: 'not-the-password' });
    const error = page.locator('#login-error');
    await error.waitFor();
    assert.equal((await error.textContent()).trim(), 'The email or password is incorrect.');

    assert.equal(pathOf(page.url()), '/login', `still on the sign-in page, at ${page.url()}`);
    await page.locator('#login-form').waitFor(); // the form is shown again
    const leaked = visited.filter((u) => pathOf(u).startsWith('/demo'));
    assert.deepEqual(leaked, [], 'no navigation back to the demo app');
    assert.equal(await page.locator('#highlights').count(), 0);
    await shot(page, '03-wrong-password.png');
  });
});

test('prompt=login asks again with the email prefilled and issues a newer auth_time', { timeout: TEST_TIMEOUT }, async () => {
  await withPage('reauthenticate', async (page) => {
    await signInFromDemo(page);
    const first = await readAuthTime(page);

    // auth_time has one-second resolution: let the clock pass at least one second boundary.
    await page.waitForTimeout(1500);
    await page.locator('#reauthenticate').click();
    await page.waitForURL(isSignInPage);
    await page.locator('#login-form').waitFor();
    assert.equal(await page.locator('h1').textContent(), "Confirm it's you");
    assert.equal(await page.locator('#email').inputValue(), DEMO_EMAIL, 'email is prefilled');
    assert.equal(await page.locator('#password').inputValue(), '', 'password is not prefilled');
    await shot(page, '04-reauthenticate.png');

    await submitSignIn(page, { password: DEMO_PASSWORD });
    await passOfferAndWaitForDemo(page);
    const second = await readAuthTime(page);
    assert.ok(second > first, `new auth_time ${second} should be greater than the first ${first}`);
    assert.equal((await page.locator('#can-reauthenticate').textContent()).trim(), 'true');
    assert.match(await page.locator('#amr').textContent(), /\bpwd\b/);
    await shot(page, '05-demo-reauthenticated.png');
  });
});

test('the sign-in page has a strict Content-Security-Policy and no inline scripts', { timeout: TEST_TIMEOUT }, async () => {
  await withPage('csp', async (page) => {
    const violations = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) violations.push(msg.text());
    });
    await page.goto(`${BASE_URL}/demo`);
    const signInResponse = page.waitForResponse(
      (r) => r.request().method() === 'GET' && r.request().isNavigationRequest() && isSignInPage(new URL(r.url())),
    );
    await page.locator('#demo-sign-in').click();
    const response = await signInResponse;
    await page.waitForURL(isSignInPage);
    await page.locator('#login-form').waitFor();

    assert.equal(response.status(), 200);
    const csp = await response.headerValue('content-security-policy');
    assert.ok(csp, 'the sign-in page sends a Content-Security-Policy header');
    const directives = csp.split(';').map((d) => d.trim().replace(/\s+/g, ' '));
    assert.ok(directives.some((d) => d.startsWith("script-src 'self'")), `CSP has script-src 'self': ${csp}`);
    assert.ok(directives.includes("frame-ancestors 'none'"), `CSP has frame-ancestors 'none': ${csp}`);
    assert.ok(
      !directives.some((d) => d.startsWith('script-src') && /'unsafe-inline'|'unsafe-eval'/.test(d)),
      `script-src allows no inline or eval: ${csp}`,
    );

    const scripts = await page.locator('script').evaluateAll((els) =>
      els.map((s) => ({ src: s.getAttribute('src'), text: s.textContent.trim().slice(0, 80) })),
    );
    const inline = scripts.filter((s) => !s.src);
    assert.deepEqual(inline, [], 'every <script> on the sign-in page has a src');
    const handlers = await page.locator('*').evaluateAll((els) =>
      els.flatMap((el) =>
        [...el.attributes]
          .filter((a) => /^on/i.test(a.name) || /^\s*javascript:/i.test(a.value))
          .map((a) => `<${el.localName} ${a.name}="${a.value}">`),
      ),
    );
    assert.deepEqual(handlers, [], 'no inline event handlers or javascript: URLs');
    assert.deepEqual(violations, [], 'the page triggers no CSP violations');
  });
});

test('the demo sensitive operation forces a fresh sign-in once auth_time is too old', { timeout: TEST_TIMEOUT }, async () => {
  // run.sh starts the server with a 5-second freshness window for the demo's operation.
  await withPage('sensitive', async (page) => {
    await signInFromDemo(page);
    const first = await readAuthTime(page);

    // Fresh sign-in: the operation runs at once, no sign-in page.
    await page.locator('#sensitive-operation').click();
    await page.waitForURL(isDemoPage);
    await page.locator('#operation-result').waitFor();
    assert.match(await page.locator('#operation-result').textContent(), /recent enough/);
    await shot(page, '06-sensitive-fresh.png');

    // Past the window: Tessera asks to confirm it's the same user (prompt=login + id_token_hint).
    // auth_time and the demo's clock have one-second resolution, so "more than 5 s old" needs
    // 6 whole seconds on the clock: 5.5 s after a sign-in early in a second reads as 5.
    await page.waitForTimeout(6500);
    await page.locator('#sensitive-operation').click();
    await page.waitForURL(isSignInPage);
    assert.equal(await page.locator('h1').textContent(), "Confirm it's you");
    assert.equal(await page.locator('#email').inputValue(), DEMO_EMAIL);
    assert.equal(await page.locator('#email').getAttribute('readonly'), '', 'the hinted account is fixed');
    await shot(page, '07-sensitive-reauthenticate.png');
    await submitSignIn(page, { password: DEMO_PASSWORD });
    await passOfferAndWaitForDemo(page);
    await page.locator('#operation-result').waitFor();
    const before = Number(await page.locator('#auth-time-before').textContent());
    const after = Number(await page.locator('#auth-time-after').textContent());
    assert.equal(before, first, 'the operation saw the old auth_time first');
    assert.ok(after > before, `auth_time advanced from ${before} to ${after}`);
    assert.equal(await readAuthTime(page), after);
    await shot(page, '08-sensitive-done.png');
  });
});

test('the account page lists the session and signing out reaches Tessera', { timeout: TEST_TIMEOUT }, async () => {
  await withPage('account-logout', async (page) => {
    await signInFromDemo(page);
    await page.locator('#account-link').click();
    await page.waitForURL((url) => pathOf(url) === '/account');
    assert.equal((await page.locator('#account-email').textContent()).trim(), DEMO_EMAIL);
    assert.ok((await page.locator('#sessions tr[data-session]').count()) >= 1);
    await shot(page, '09-account.png');

    // RP-initiated logout from the demo: back on /demo signed out, and Tessera's session gone.
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-logout').click();
    await page.waitForURL(isDemoPage);
    await page.locator('#demo-sign-in').waitFor();
    await page.goto(`${BASE_URL}/account`);
    await page.waitForURL(isSignInPage);
    assert.match(await page.locator('.lead').textContent(), /Your Tessera account/, 'signed out: /account asks to sign in');
  });
});
