// Signing in through an upstream OpenID provider in a real browser. The test starts panva's
// oidc-provider (tests/upstream/provider.mjs) on a free port, the demo admin adds it to the
// default organization on the console's sign-in providers page, then a new browser opens the
// demo app, presses the provider's button on Tessera's sign-in page, signs in upstream with an
// email Tessera has never seen, and lands back in the demo app signed in as a new account
// whose ID token says the sign-in was federated. The provider is deleted afterwards (through
// the console again) and the node process stopped, so suites run after this one are
// unaffected. Run through tests/e2e/run.sh (it sets TESSERA_URL and CHROMIUM_PATH).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.TESSERA_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DEMO_EMAIL = 'demo@example.com';
const DEMO_PASSWORD = 'tessera-demo';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const UPSTREAM_DIR = path.join(HERE, '..', 'upstream');
const PROVIDER_ID = 'e2e-upstream';
const CLIENT_ID = 'tessera-e2e';
const CLIENT_SECRET = 'e2e-upstream-client-secret';
const ACTION_TIMEOUT = 15_000;
const TEST_TIMEOUT = 90_000;

let browser;
let upstream;
let upstreamIssuer;
let adminContext;
let adminPage;

const pathOf = (url) => new URL(url).pathname;

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts provider.mjs (installing its dependencies once) and waits for its discovery document. */
async function startUpstream() {
  if (!existsSync(path.join(UPSTREAM_DIR, 'node_modules', 'oidc-provider', 'package.json'))) {
    const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: UPSTREAM_DIR,
      stdio: 'inherit',
    });
    assert.equal(npm.status, 0, 'npm ci in tests/upstream');
  }
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['provider.mjs', String(port), CLIENT_ID, CLIENT_SECRET, `${BASE_URL}/login/upstream/callback`],
    { cwd: UPSTREAM_DIR, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const issuer = `http://localhost:${port}`;
  for (let i = 0; i < 100; i += 1) {
    assert.equal(child.exitCode, null, 'the upstream provider exited early');
    try {
      const r = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return { child, issuer };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill();
  throw new Error(`the upstream provider did not start on port ${port}`);
}

/** Opens /admin signed out and signs the demo user (an admin of the default org) in. */
async function signInToConsole(page) {
  await page.goto(`${BASE_URL}/admin`);
  await page.waitForURL((url) => pathOf(url) === '/login');
  await page.locator('#email').fill(DEMO_EMAIL);
  await page.locator('#password').fill(DEMO_PASSWORD);
  await page.locator('#login-form button[type="submit"]').click();
  await page.waitForURL((url) => pathOf(url) === '/admin' || pathOf(url) === '/passkeys/offer');
  if (pathOf(page.url()) === '/passkeys/offer') {
    await page.locator('#passkey-not-now').click();
    await page.waitForURL((url) => pathOf(url) === '/admin');
  }
}

async function readClaims(page) {
  return page.locator('#claims tr').evaluateAll((rows) =>
    Object.fromEntries(
      rows.map((tr) => [tr.querySelector('th')?.textContent.trim(), tr.querySelector('td')?.textContent.trim()]),
    ),
  );
}

before(async () => {
  assert.ok(BASE_URL, 'set TESSERA_URL to the server under test');
  mkdirSync(SCREENSHOTS, { recursive: true });
  ({ child: upstream, issuer: upstreamIssuer } = await startUpstream());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  // Whatever happened, the provider goes, so the other suites' sign-in pages stay as they were.
  try {
    if (adminPage) {
      await adminPage.goto(`${BASE_URL}/admin/providers`);
      const row = adminPage.locator(`tr[data-provider="${PROVIDER_ID}"]`);
      if (await row.count()) {
        await row.locator('.provider-delete').click();
        await adminPage.waitForURL((url) => new URL(url).searchParams.get('notice') === 'provider-deleted');
      }
    }
  } finally {
    await adminContext?.close();
    await browser?.close();
    upstream?.kill();
  }
});

test('a new person signs in to the demo app through an upstream provider', { timeout: TEST_TIMEOUT }, async () => {
  // The demo admin adds the provider on the console.
  adminContext = await browser.newContext({ viewport: { width: 1000, height: 1000 } });
  adminContext.setDefaultTimeout(ACTION_TIMEOUT);
  adminContext.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  adminPage = await adminContext.newPage();
  await signInToConsole(adminPage);
  await adminPage.locator('nav a[href="/admin/providers"]').click();
  await adminPage.waitForURL((url) => pathOf(url) === '/admin/providers');
  await adminPage.locator('#provider-id').fill(PROVIDER_ID);
  await adminPage.locator('#provider-kind').selectOption('oidc');
  await adminPage.locator('#provider-name').fill('Upstream Test IdP');
  await adminPage.locator('#provider-issuer').fill(upstreamIssuer);
  await adminPage.locator('#provider-client-id').fill(CLIENT_ID);
  await adminPage.locator('#provider-secret').fill(CLIENT_SECRET);
  await adminPage.locator('#provider-create').click();
  await adminPage.waitForURL((url) => new URL(url).searchParams.get('notice') === 'provider-saved');
  const row = adminPage.locator(`tr[data-provider="${PROVIDER_ID}"]`);
  assert.equal((await row.locator('.provider-secret').textContent()).trim(), 'set');
  assert.ok(!(await adminPage.content()).includes(CLIENT_SECRET), 'the secret is not shown back');
  await shot(adminPage, '60-upstream-console.png');

  // A new browser: demo app → Tessera's sign-in page → the provider's button.
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  const page = await context.newPage();
  const email = `upstream-${Date.now()}@example.com`;
  try {
    await page.goto(`${BASE_URL}/demo`);
    await page.locator('#demo-sign-in').click();
    await page.waitForURL((url) => pathOf(url) === '/login');
    const button = page.locator(`#upstream-${PROVIDER_ID}`);
    assert.equal((await button.textContent()).trim(), 'Continue with Upstream Test IdP');
    await shot(page, '60-upstream-sign-in.png');
    await button.click();

    // The upstream provider's own sign-in page, on its own origin.
    await page.waitForURL((url) => url.href.startsWith(`${upstreamIssuer}/interaction/`));
    await page.locator('#upstream-email').fill(email);
    await shot(page, '60-upstream-provider.png');
    await page.locator('#upstream-submit').click();

    // Back through Tessera's callback to the demo app (past a passkey offer, if any).
    await page.waitForURL((url) => pathOf(url) === '/demo' || pathOf(url) === '/passkeys/offer');
    if (pathOf(page.url()) === '/passkeys/offer') {
      await page.locator('#passkey-not-now').click();
      await page.waitForURL((url) => pathOf(url) === '/demo');
    }
    await page.locator('#highlights').waitFor();
    assert.match(await page.locator('#amr').textContent(), /\bfed\b/);
    const claims = await readClaims(page);
    assert.equal(claims.iss, BASE_URL);
    assert.equal(claims.aud, 'tessera-demo');
    assert.equal(claims.email, email, 'the new account has the upstream email');
    assert.match(claims.amr, /\bfed\b/);
    await shot(page, '60-upstream-demo-signed-in.png');
  } finally {
    await context.close();
  }
});
