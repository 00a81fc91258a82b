// Passkeys in the browser: sign-in on the hosted page (autofill, username-first and
// usernameless) and registration on the account and offer pages. Served as a file, with no
// build step, because the CSP forbids inline script. The server's options are webauthn-rs
// JSON: binary members are base64url strings, converted here to and from ArrayBuffers.

const b64urlToBuffer = (text) => {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
};

const bufferToB64url = (buffer) => {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

// Browsers reject null for optional sequence members (e.g. "hints": null): drop nulls.
const withoutNulls = (value) => {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, withoutNulls(v)]),
    );
  }
  return value;
};

const creationOptions = (options) => {
  const pk = withoutNulls(options.publicKey);
  pk.challenge = b64urlToBuffer(pk.challenge);
  pk.user.id = b64urlToBuffer(pk.user.id);
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: b64urlToBuffer(c.id) }));
  return pk;
};

const requestOptions = (options) => {
  const pk = withoutNulls(options.publicKey);
  pk.challenge = b64urlToBuffer(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: b64urlToBuffer(c.id) }));
  return pk;
};

const registrationJson = (credential) => ({
  id: credential.id,
  rawId: bufferToB64url(credential.rawId),
  type: credential.type,
  response: {
    attestationObject: bufferToB64url(credential.response.attestationObject),
    clientDataJSON: bufferToB64url(credential.response.clientDataJSON),
    transports: credential.response.getTransports ? credential.response.getTransports() : [],
  },
  extensions: {},
});

const assertionJson = (credential) => ({
  id: credential.id,
  rawId: bufferToB64url(credential.rawId),
  type: credential.type,
  response: {
    authenticatorData: bufferToB64url(credential.response.authenticatorData),
    clientDataJSON: bufferToB64url(credential.response.clientDataJSON),
    signature: bufferToB64url(credential.response.signature),
    userHandle: credential.response.userHandle ? bufferToB64url(credential.response.userHandle) : null,
  },
  extensions: {},
});

const showError = (message) => {
  const box = document.getElementById('passkey-error');
  if (!box) return;
  box.textContent = message;
  box.hidden = false;
};

async function postJson(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // An HTML error page (expired form, …) has no JSON.
  }
  if (!response.ok) {
    throw new Error((data && (data.message || data.error_description)) || 'The request was refused. Reload the page and try again.');
  }
  return data;
}

const supported = () => typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

const explain = (error) => {
  if (error && error.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
  if (error && error.name === 'InvalidStateError') return 'This passkey is already registered.';
  return (error && error.message) || 'The passkey did not work. Try again.';
};

// --- Sign-in -------------------------------------------------------------------------------
function setUpSignIn(form) {
  const button = document.getElementById('passkey-sign-in');
  if (!supported()) {
    if (button) button.hidden = true;
    const note = document.getElementById('passkey-unsupported');
    if (note) note.hidden = false;
    return;
  }
  const request = form.dataset.request;
  const csrf = form.dataset.csrf;
  // The email field of the password form, or of the email-code form.
  const email = document.getElementById('email') || document.querySelector('#otp-form input[type=email]');
  let conditional = null;

  const finish = async (ceremony, credential) => {
    const result = await postJson('/login/passkey/finish', { request, csrf, ceremony, credential: assertionJson(credential) });
    window.location.assign(result.redirect);
  };

  const modal = async () => {
    if (conditional) conditional.abort();
    try {
      const typed = email && email.value.trim() ? email.value.trim() : undefined;
      const { ceremony, options } = await postJson('/login/passkey/options', { request, csrf, email: typed });
      const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
      await finish(ceremony, credential);
    } catch (error) {
      showError(explain(error));
    }
  };
  if (button) button.addEventListener('click', modal);

  // Passkey autofill in the email field (conditional mediation), when nothing is locked in.
  const autofill = async () => {
    if (!email || email.readOnly) return;
    if (!PublicKeyCredential.isConditionalMediationAvailable) return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    conditional = new AbortController();
    try {
      const { ceremony, options } = await postJson('/login/passkey/options', { request, csrf, mediation: 'conditional' });
      const credential = await navigator.credentials.get({
        mediation: 'conditional',
        publicKey: requestOptions(options),
        signal: conditional.signal,
      });
      await finish(ceremony, credential);
    } catch (error) {
      if (error && error.name !== 'AbortError') showError(explain(error));
    }
  };
  autofill();
}

// --- Registration --------------------------------------------------------------------------
function setUpRegistration(box) {
  const button = document.getElementById('passkey-add');
  if (!supported()) {
    if (button) button.disabled = true;
    const note = document.getElementById('passkey-unsupported');
    if (note) note.hidden = false;
    return;
  }
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const csrf = box.dataset.csrf;
      // The account page and account recovery register through their own endpoints.
      const base = box.dataset.endpoint || '/account/passkeys';
      const { ceremony, options } = await postJson(`${base}/options`, { csrf });
      const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
      const nameInput = document.getElementById('passkey-name');
      const done = await postJson(`${base}/finish`, {
        csrf,
        ceremony,
        credential: registrationJson(credential),
        name: nameInput ? nameInput.value : '',
      });
      window.location.assign(done.redirect || box.dataset.continue);
    } catch (error) {
      showError(explain(error));
      button.disabled = false;
    }
  });
}

const signInForm = document.querySelector('#sign-in[data-passkeys]');
if (signInForm) setUpSignIn(signInForm);
const registration = document.getElementById('passkey-register');
if (registration) setUpRegistration(registration);

// --- Sign-up: the new account's first credential is a passkey --------------------------------
// The box names its endpoints and the fields each call carries (request, csrf, signup, or an
// invitation token), so sign-up and invitations share this code.
function setUpSignup(box) {
  const button = document.getElementById('signup-passkey-create');
  if (!supported()) {
    button.disabled = true;
    document.getElementById('passkey-unsupported').hidden = false;
    return;
  }
  const fields = {};
  for (const name of ['request', 'csrf', 'signup', 'invitation']) {
    if (box.dataset[name] !== undefined) fields[name] = box.dataset[name];
  }
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const { ceremony, options } = await postJson(box.dataset.options, fields);
      const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
      const { redirect } = await postJson(box.dataset.finish, {
        ...fields,
        ceremony,
        credential: registrationJson(credential),
      });
      window.location.assign(redirect);
    } catch (error) {
      showError(explain(error));
      button.disabled = false;
    }
  });
}

const signupBox = document.getElementById('signup-passkey');
if (signupBox) setUpSignup(signupBox);
