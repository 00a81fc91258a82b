// QR cross-device sign-in in a real browser: a "desktop" context shows the QR code on the
// hosted sign-in page, a signed-in "phone" context opens the QR URL, reads what is asking,
// types the match code from the desktop and approves; the desktop lands in the demo app.
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

async function newPage(viewport) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  return { context, page: await context.newPage() };
}

async function openSignIn(page) {
  await page.goto(`${BASE_URL}/demo`);
  await page.locator('#demo-sign-in').click();
  await page.waitForURL((url) => pathOf(url) === '/login');
  await page.locator('#login-form').waitFor();
}

async function claimsOf(page) {
  return page.locator('#claims tr').evaluateAll((rows) =>
    Object.fromEntries(rows.map((tr) => [tr.querySelector('th')?.textContent.trim(),
      tr.querySelector('td')?.textContent.trim()])));
}

test('a signed-in phone approves a QR code and the desktop lands in the demo app', { timeout: 90_000 }, async () => {
  const desktop = await newPage({ width: 1100, height: 900 });
  const phone = await newPage({ width: 390, height: 844 });
  try {
    // The phone is signed in already (a password sign-in just now: a recent verification).
    await openSignIn(phone.page);
    await phone.page.locator('#email').fill(DEMO_EMAIL);
    await phone.page.locator('#password').fill(DEMO_PASSWORD);
    await phone.page.locator('#login-form button[type="submit"]').click();
    await phone.page.waitForURL((url) => ['/demo', '/passkeys/offer'].includes(pathOf(url)));

    // The desktop asks for a QR code; its URL is exposed on the image for accessibility.
    await openSignIn(desktop.page);
    await desktop.page.locator('#qr-start').click();
    const image = desktop.page.locator('#qr-image[data-qr-url]');
    await image.waitFor();
    await desktop.page.waitForFunction(() => document.getElementById('qr-image').complete);
    const qrUrl = await image.getAttribute('data-qr-url');
    assert.match(qrUrl, new RegExp(`^${BASE_URL}/qr/[A-Za-z0-9_-]{22}$`));
    await desktop.page.screenshot({ path: path.join(SCREENSHOTS, 'qr-01-desktop-code.png'), fullPage: true });

    // The phone opens it and sees what is asking.
    await phone.page.goto(qrUrl);
    await phone.page.locator('#qr-context').waitFor();
    assert.match(await phone.page.locator('#qr-client').textContent(), /Tessera demo|demo/i);
    assert.match(await phone.page.locator('#qr-verdict').textContent(), /same network/);

    // The desktop now shows the match code, which the person types on the phone.
    const codeLocator = desktop.page.locator('#qr-match-code');
    await desktop.page.locator('#qr-match').waitFor({ state: 'visible' });
    const code = (await codeLocator.textContent()).trim();
    assert.match(code, /^\d{3}$/);
    await desktop.page.screenshot({ path: path.join(SCREENSHOTS, 'qr-02-desktop-match-code.png'), fullPage: true });
    await phone.page.locator('#qr-code').fill(code);
    await phone.page.screenshot({ path: path.join(SCREENSHOTS, 'qr-03-phone-approve.png'), fullPage: true });
    await phone.page.locator('#qr-approve').click();
    await phone.page.locator('#qr-result').waitFor();
    assert.equal((await phone.page.locator('#qr-result').textContent()).trim(), 'Approved');
    await phone.page.screenshot({ path: path.join(SCREENSHOTS, 'qr-04-phone-approved.png'), fullPage: true });

    // The desktop opens the sealed grant with its WebCrypto key, redeems it and lands signed in.
    await desktop.page.waitForURL((url) => pathOf(url) === '/demo', { timeout: 20_000 });
    await desktop.page.locator('#claims').waitFor();
    const claims = await claimsOf(desktop.page);
    assert.match(claims.amr, /mca/);
    assert.match(claims.amr, /pwd/);
    assert.match(claims.auth_time, /^\d{9,11}/);
    assert.ok(Math.abs(Number(claims.auth_time.match(/^\d+/)[0]) - Date.now() / 1000) < 60);
    assert.match(claims.can_reauthenticate, /true/);
    await desktop.page.screenshot({ path: path.join(SCREENSHOTS, 'qr-05-desktop-signed-in.png'), fullPage: true });
  } finally {
    await desktop.context.close();
    await phone.context.close();
  }
});

test('a denial on the phone reaches the desktop, which offers a new code', { timeout: 60_000 }, async () => {
  const desktop = await newPage({ width: 1100, height: 900 });
  const phone = await newPage({ width: 390, height: 844 });
  try {
    await openSignIn(phone.page);
    await phone.page.locator('#email').fill(DEMO_EMAIL);
    await phone.page.locator('#password').fill(DEMO_PASSWORD);
    await phone.page.locator('#login-form button[type="submit"]').click();
    await phone.page.waitForURL((url) => ['/demo', '/passkeys/offer'].includes(pathOf(url)));

    await openSignIn(desktop.page);
    await desktop.page.locator('#qr-start').click();
    const qrUrl = await desktop.page.locator('#qr-image[data-qr-url]').getAttribute('data-qr-url');
    await phone.page.goto(qrUrl);
    await phone.page.locator('#qr-deny').click();
    await phone.page.locator('#qr-result').waitFor();
    assert.equal((await phone.page.locator('#qr-result').textContent()).trim(), 'Denied');
    await desktop.page.locator('#qr-again').waitFor({ state: 'visible' });
    assert.match(await desktop.page.locator('#qr-status').textContent(), /denied/);
    await desktop.page.screenshot({ path: path.join(SCREENSHOTS, 'qr-06-desktop-denied.png'), fullPage: true });
  } finally {
    await desktop.context.close();
    await phone.context.close();
  }
});
