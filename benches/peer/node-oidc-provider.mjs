// node-oidc-provider configured as close to Tessera's defaults as it allows, for the
// side-by-side benchmark in benches/load.rs (which installs this folder into a temporary
// directory with `npm install` and starts `node node-oidc-provider.mjs PORT`).
//
// Comparable settings: one RS256 key (RSA-2048), one confidential client using
// client_secret_basic, PKCE S256, authorization code + refresh token (rotated on every use, as
// Tessera does) + client credentials, opaque access tokens (so a refresh response carries
// exactly one RSA signature: the ID token, like Tessera with access_token_format = "opaque").
// Storage is the provider's default in-memory adapter, which favours the peer: Tessera writes
// every code, grant and refresh token to SQLite.
//
// The interaction step (login + consent) is answered automatically for the one bench account:
// the code flow itself still runs through the provider's /auth, interaction and resume
// endpoints with its cookies, like a browser with a signed-in user.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT || 3000);
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.PEER_CLIENT_ID || 'bench';
const clientSecret = process.env.PEER_CLIENT_SECRET || 'bench-secret-0123456789abcdef0123456789';
const redirectUri = process.env.PEER_REDIRECT_URI || 'http://127.0.0.1:9/cb';
const accountId = 'bench-user';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: 'bench@example.com', email_verified: true }),
  }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  pkce: { required: () => true },
  // Tessera rotates every refresh token (RFC 9700 §4.14.2); make the peer do the same work.
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: 900,
    AuthorizationCode: 60,
    IdToken: 300,
    RefreshToken: 30 * 24 * 3600,
    ClientCredentials: 900,
    Grant: 30 * 24 * 3600,
    Session: 24 * 3600,
    Interaction: 600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

// Answers login and consent for the bench account, then hands back to the provider.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope));
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  callback(req, res);
}).listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
