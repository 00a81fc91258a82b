// panva's oidc-provider (OpenID Certified, written independently of Tessera) as an upstream
// identity provider for tests/upstream.rs and the browser test. Started as
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// with its issuer at http://localhost:PORT. Its sign-in page asks for an email (no password:
// the account is whoever types the address) and has a Cancel button; an address starting with
// "unverified" is reported with email_verified: false. Consent is granted without a page.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://localhost:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The ID token carries the claims itself (the relying party may also read userinfo).
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: id,
      email_verified: !id.startsWith('unverified'),
      name: `Person ${id.split('@')[0]}`,
    }),
  }),
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const page = (uid) => `<!doctype html><html><head><title>Upstream sign-in</title></head><body>
<h1>Sign in at the upstream provider</h1>
<form method="post" action="/interaction/${uid}/login">
<label for="upstream-email">Email</label>
<input id="upstream-email" name="email" type="email" required>
<button type="submit" id="upstream-submit">Sign in</button>
</form>
<form method="post" action="/interaction/${uid}/abort">
<button type="submit" id="upstream-cancel">Cancel</button>
</form>
</body></html>`;

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const [, , uid, action] = req.url.split('?')[0].split('/');
  if (details.prompt.name === 'login') {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page(uid));
      return;
    }
    if (action === 'abort') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'the person cancelled',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const email = (await body(req)).get('email');
    await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error(err);
      res.writeHead(500);
      res.end();
    });
  } else {
    callback(req, res);
  }
}).listen(Number(port), '127.0.0.1', () => console.log(`listening on ${issuer}`));
