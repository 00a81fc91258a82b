// QR sign-in, the waiting browser's side (README "QR sign-in"). A P-256 key pair is made
// here with a non-extractable private key; the server seals the login grant to its public
// key (JWE ECDH-ES + A256GCM, the QR id bound in as `apv`), so only this page can open it.
const section = document.getElementById('qr-login');
const startButton = document.getElementById('qr-start');
const panel = document.getElementById('qr-panel');
const image = document.getElementById('qr-image');
const statusLine = document.getElementById('qr-status');
const matchLine = document.getElementById('qr-match');
const matchCode = document.getElementById('qr-match-code');
const againButton = document.getElementById('qr-again');

const MAX_AUTOMATIC_REFRESHES = 5;
let current = null;
let keyPair = null;
let refreshes = 0;

const text = new TextEncoder();

function b64urlDecode(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function u32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function lengthPrefixed(bytes) { return concat(u32(bytes.length), bytes); }

// RFC 7518 §4.6: Z from ECDH, then Concat KDF with AlgorithmID "A256GCM", empty PartyUInfo,
// PartyVInfo = apv, keydatalen 256; then AES-256-GCM with the protected header as AAD.
async function openGrant(jwe, privateKey, apv) {
  const [protectedHeader, encryptedKey, iv, ciphertext, tag] = jwe.split('.');
  const header = JSON.parse(new TextDecoder().decode(b64urlDecode(protectedHeader)));
  if (header.alg !== 'ECDH-ES' || header.enc !== 'A256GCM' || encryptedKey !== '') {
    throw new Error('unexpected JWE');
  }
  const epk = await crypto.subtle.importKey('jwk',
    { kty: 'EC', crv: 'P-256', x: header.epk.x, y: header.epk.y },
    { name: 'ECDH', namedCurve: 'P-256' }, false, []);
  const z = new Uint8Array(await crypto.subtle.deriveBits({ name: 'ECDH', public: epk }, privateKey, 256));
  const otherInfo = concat(lengthPrefixed(text.encode('A256GCM')), lengthPrefixed(new Uint8Array()),
    lengthPrefixed(text.encode(apv)), u32(256));
  const keyBytes = await crypto.subtle.digest('SHA-256', concat(u32(1), z, otherInfo));
  const key = await crypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['decrypt']);
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: b64urlDecode(iv), additionalData: text.encode(protectedHeader), tagLength: 128 },
    key, concat(b64urlDecode(ciphertext), b64urlDecode(tag)));
  return new TextDecoder().decode(plain);
}

function say(message) { statusLine.textContent = message; }

function offerRestart(message) {
  say(message);
  matchLine.hidden = true;
  againButton.hidden = false;
}

async function post(path, body) {
  return fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ request: section.dataset.request, csrf: section.dataset.csrf, ...body }),
  });
}

async function start() {
  againButton.hidden = true;
  matchLine.hidden = true;
  panel.hidden = false;
  startButton.hidden = true;
  say('Preparing a QR code…');
  try {
    keyPair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
    const response = await post('/qr/start', { key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      offerRestart(error.error_description || 'Could not create a QR code. Reload the page and try again.');
      return;
    }
    const session = await response.json();
    current = session;
    image.src = session.svg;
    image.dataset.qrUrl = session.url;
    image.title = session.url;
    say('Scan this code with a phone where you are signed in.');
    watch(session);
  } catch (e) {
    offerRestart('This browser cannot sign in with a QR code.');
  }
}

function watch(session) {
  let socket;
  try {
    const url = new URL(session.events, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(url);
  } catch (e) {
    poll(session);
    return;
  }
  socket.addEventListener('message', (event) => { show(session, JSON.parse(event.data)); });
  // A socket that never opens (a proxy that drops upgrades) falls back to polling; one that
  // closes early is resumed by polling too, so no state change is missed.
  socket.addEventListener('close', () => {
    if (session === current && !session.finished) poll(session);
  });
}

async function poll(session) {
  while (session === current && !session.finished) {
    try {
      const response = await fetch(session.status, { credentials: 'same-origin' });
      if (response.ok) await show(session, await response.json());
      else { offerRestart('This QR code is no longer valid.'); session.finished = true; }
    } catch (e) { /* a network blip: try again */ }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function show(session, status) {
  if (session !== current || session.finished) return;
  switch (status.state) {
    case 'waiting':
      say('Scan this code with a phone where you are signed in.');
      break;
    case 'scanned':
      say('Scanned. Check your phone and type this code there.');
      matchCode.textContent = status.match_code;
      matchLine.hidden = false;
      image.hidden = true;
      break;
    case 'approved':
      session.finished = true;
      matchLine.hidden = true;
      say('Approved. Signing you in…');
      await redeem(session, status.grant);
      break;
    case 'denied':
      session.finished = true;
      image.hidden = true;
      offerRestart('The sign-in was denied on the phone.');
      break;
    case 'expired':
      session.finished = true;
      if (refreshes < MAX_AUTOMATIC_REFRESHES) {
        refreshes += 1;
        image.hidden = false;
        start();
      } else {
        offerRestart('The QR code expired.');
      }
      break;
    default:
      session.finished = true;
      offerRestart('This QR code has been used. Start again to sign in.');
  }
}

async function redeem(session, sealed) {
  try {
    const grant = await openGrant(sealed, keyPair.privateKey, session.id);
    const response = await post(`/qr/${session.id}/redeem`, { grant });
    if (!response.ok) {
      offerRestart('The approval could not be used in this browser. Start again.');
      return;
    }
    const { next } = await response.json();
    window.location.assign(next);
  } catch (e) {
    offerRestart('The approval could not be opened in this browser. Start again.');
  }
}

if (section) {
  if (!window.isSecureContext || !window.crypto || !crypto.subtle || !window.fetch) {
    section.hidden = true;
  } else {
    startButton.addEventListener('click', () => { refreshes = 0; image.hidden = false; start(); });
    againButton.addEventListener('click', () => { refreshes = 0; image.hidden = false; start(); });
  }
}
